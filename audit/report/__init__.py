"""Report rendering from the catalog: HTML (and Markdown)."""
