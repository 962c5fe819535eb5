"""bench-audit domain library: adapters, grading classification, abstention, scoring, reports."""
