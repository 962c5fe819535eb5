"""Calibration and the behavioural-calibration audit, per (model, benchmark, grader), wherever confidences exist.

Computed in DuckDB SQL over the ``responses`` table (vectorised; see docs/calibration.md for the definitions):

* ``calibration``: n, accuracy, mean confidence, ECE over equal-mass bins, Brier score, AURC (area under the
  risk-coverage curve) over the answered rows (correct or wrong) that carry a confidence.
* ``threshold_sweep``: the simulated policy "abstain when confidence < t" at each t: coverage, accuracy, error,
  selective risk, and the score under the matching penalty t/(1-t) (correct +1, abstain 0, wrong -t/(1-t)).
  A row the source or the detector already marked abstained stays abstained at every t.
"""

from __future__ import annotations

from typing import Sequence

import duckdb
import pyarrow as pa

DEFAULT_BINS = 10
SWEEP_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(20))  # 0, 0.05, ..., 0.95

CALIBRATION_SQL = """
WITH base AS (
    SELECT model, benchmark, grader, sample_id, confidence AS c, CASE WHEN outcome = 'correct' THEN 1.0 ELSE 0.0 END AS y
    FROM responses WHERE confidence IS NOT NULL AND outcome IN ('correct', 'wrong')
),
ranked AS (
    SELECT *,
        count(*) OVER g AS n,
        row_number() OVER (PARTITION BY model, benchmark, grader ORDER BY c, sample_id) AS r,
        -- risk at the coverage reached by answering everything at least this confident (ties answered together)
        sum(1.0 - y) OVER (PARTITION BY model, benchmark, grader ORDER BY c DESC RANGE BETWEEN UNBOUNDED PRECEDING
                           AND CURRENT ROW)
        / count(*) OVER (PARTITION BY model, benchmark, grader ORDER BY c DESC RANGE BETWEEN UNBOUNDED PRECEDING
                         AND CURRENT ROW) AS risk
    FROM base WINDOW g AS (PARTITION BY model, benchmark, grader)
),
binned AS (
    SELECT *, least($bins, n) AS n_bins, floor((r - 1) * least($bins, n) / n)::INTEGER AS bin FROM ranked
),
bins AS (
    SELECT model, benchmark, grader, bin, any_value(n) AS n, any_value(n_bins) AS n_bins, count(*) AS nb,
           avg(c) AS conf, avg(y) AS acc
    FROM binned GROUP BY model, benchmark, grader, bin
),
ece AS (
    SELECT model, benchmark, grader, sum(nb / n * abs(conf - acc)) AS ece, any_value(n_bins) AS n_bins
    FROM bins GROUP BY model, benchmark, grader
)
SELECT r.model, r.benchmark, r.grader, count(*)::BIGINT AS n, avg(r.y) AS accuracy, avg(r.c) AS mean_confidence,
       avg(r.c) - avg(r.y) AS overconfidence, any_value(e.ece) AS ece, any_value(e.n_bins)::INTEGER AS n_bins,
       avg((r.c - r.y) * (r.c - r.y)) AS brier, avg(r.risk) AS aurc
FROM ranked r JOIN ece e USING (model, benchmark, grader)
GROUP BY r.model, r.benchmark, r.grader
ORDER BY r.benchmark, r.grader, r.model
"""

SWEEP_SQL = """
WITH base AS (
    SELECT model, benchmark, grader, confidence AS c, outcome FROM responses WHERE confidence IS NOT NULL
),
per AS (
    SELECT b.model, b.benchmark, b.grader, t.threshold, count(*)::BIGINT AS n,
           count(*) FILTER (WHERE b.outcome <> 'abstained' AND b.c >= t.threshold)::BIGINT AS n_answered,
           count(*) FILTER (WHERE b.outcome = 'correct' AND b.c >= t.threshold)::BIGINT AS n_correct,
           count(*) FILTER (WHERE b.outcome = 'wrong' AND b.c >= t.threshold)::BIGINT AS n_wrong
    FROM base b CROSS JOIN (SELECT unnest($grid::DOUBLE[]) AS threshold) t
    GROUP BY b.model, b.benchmark, b.grader, t.threshold
)
SELECT model, benchmark, grader, threshold, n, n_answered, n_correct, n_wrong,
       n_answered / n AS coverage, n_correct / n AS accuracy, n_wrong / n AS error,
       (n - n_answered) / n AS abstention_rate,
       CASE WHEN n_answered > 0 THEN n_wrong / n_answered END AS risk,
       (n_correct - n_wrong * threshold / (1 - threshold)) / n AS score
FROM per ORDER BY benchmark, grader, model, threshold
"""


def calibration_table(con: duckdb.DuckDBPyConnection, *, bins: int = DEFAULT_BINS) -> pa.Table:
    """One row per (model, benchmark, grader) with answered rows that carry a confidence."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    return con.sql(CALIBRATION_SQL.replace("$bins", str(int(bins)))).to_arrow_table()


def threshold_sweep_table(con: duckdb.DuckDBPyConnection, thresholds: Sequence[float] = ()) -> pa.Table:
    """One row per (model, benchmark, grader, t) for t in the default grid plus ``thresholds`` (each in [0, 1))."""
    grid = sorted({round(float(t), 6) for t in (*SWEEP_GRID, *thresholds)})
    bad = [t for t in grid if not 0.0 <= t < 1.0]
    if bad:
        raise ValueError(f"thresholds must be in [0, 1), got {bad}")
    literal = "[" + ", ".join(repr(float(t)) for t in grid) + "]"  # floats only: nothing user-typed is spliced
    return con.sql(SWEEP_SQL.replace("$grid", literal)).to_arrow_table()
