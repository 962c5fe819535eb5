"""The DuckDB catalog: schema migrations, views, the single writer, and curated registry data."""
