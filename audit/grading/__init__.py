"""Grading-scheme classification per (benchmark, grader): evidence in, one decision out, conflicts kept."""
