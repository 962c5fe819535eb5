"""Everything derived from the canonical responses after classification: one entry per catalog table.

The flows write each returned table with the single writer (replacing the previous contents). Add a derived
table here (scores, calibration, comparisons...) and it is computed and stored by every run, with no flow change.
"""

from __future__ import annotations

from typing import Sequence

import duckdb
import pyarrow as pa

from audit.scoring import outcome_counts, score_table
from audit.validation import validate_scores


def derived_tables(con: duckdb.DuckDBPyConnection, thresholds: Sequence[float]) -> dict[str, pa.Table]:
    """Catalog table name -> its full new contents, computed from ``responses`` (read through ``con``)."""
    scores = score_table(outcome_counts(con), thresholds)
    return {
        "scores": scores,
        "scores_validation": validate_scores(scores),  # Great Expectations suite over the scores (hardening)
    }
