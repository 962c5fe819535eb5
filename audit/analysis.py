"""Everything derived from the canonical responses after classification: one entry per catalog table.

The flows write each returned table with the single writer (replacing the previous contents). Add a derived
table here (scores, calibration, comparisons...) and it is computed and stored by every run, with no flow change.
"""

from __future__ import annotations

from typing import Sequence

import duckdb
import pyarrow as pa

from audit.calibration import calibration_table, threshold_sweep_table
from audit.scoring import outcome_counts, score_table
from audit.stats import guessing_premium_table, pairwise_table, rank_tables
from audit.validation import validate_scores


def derived_tables(con: duckdb.DuckDBPyConnection, thresholds: Sequence[float]) -> dict[str, pa.Table]:
    """Catalog table name -> its full new contents, computed from ``responses`` (read through ``con``)."""
    scores = score_table(outcome_counts(con), thresholds)
    rank_stability, agreement = rank_tables(con, thresholds)
    return {
        "scores": scores,
        # behavioural calibration where confidences exist (issue 5; docs/calibration.md)
        "calibration": calibration_table(con),
        "threshold_sweep": threshold_sweep_table(con, thresholds),
        # the meta-analysis (issue 6; docs/report.md)
        "pairwise": pairwise_table(con, thresholds),
        "rank_stability": rank_stability,
        "leaderboard_agreement": agreement,
        "guessing_premium": guessing_premium_table(scores),
        # Great Expectations suite over the scores (docs/hardening.md)
        "scores_validation": validate_scores(scores),
    }
