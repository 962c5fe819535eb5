"""Re-scoring under explicit confidence targets (Kalai et al., 2025): correct +1, abstain 0, wrong -t/(1-t).

Everything is computed from sufficient statistics: per (benchmark, grader, model) the counts of correct, wrong
and abstained answers, grouped in DuckDB. A threshold's score is then (n_correct - penalty * n_wrong) / n.
"""

from __future__ import annotations

from typing import Sequence

import duckdb
import numpy as np
import pyarrow as pa

from audit.stats import bootstrap_score_ci, unit_ranges

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.0, 0.5, 0.75, 0.9)


def penalty(t: float) -> float:
    """The wrong-answer penalty t / (1 - t) for confidence target t in [0, 1)."""
    if not 0.0 <= t < 1.0:
        raise ValueError(f"confidence target must be in [0, 1), got {t}")
    return t / (1.0 - t)


# Scores are ranked after rounding to this many decimals, so that two models whose scores are equal in exact
# arithmetic tie even when the penalty t/(1-t) is not representable (t = 0.9 gives 9.000000000000002, and
# 10 - 9.000000000000002 is not 1). Used by both rankers: the scores table's rank and the bootstrap ranks.
RANK_DECIMALS = 12


def rank_key(score: np.ndarray) -> np.ndarray:
    return np.round(score, RANK_DECIMALS)


def parse_thresholds(text: str | Sequence[float]) -> list[float]:
    if isinstance(text, str):
        parts = [p for p in text.replace(" ", "").split(",") if p]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"--thresholds takes comma-separated numbers in [0, 1), e.g. 0,0.5,0.75,0.9; got {text!r}")
    else:
        values = [float(v) for v in text]
    if not values:
        raise ValueError("at least one threshold is needed, e.g. --thresholds 0,0.5,0.75,0.9")
    for v in values:
        penalty(v)
    return sorted(set(values))


def expected_guess_score(n_choices: int, t: float) -> float:
    """Expected score of a uniform random guess on an n-choice item: 1/C - (1 - 1/C) * t/(1-t)."""
    p = 1.0 / n_choices
    return p - (1.0 - p) * penalty(t)


# Grouped by outcome too, then pivoted over the few resulting rows: one count(*) per group is cheaper for
# DuckDB than three FILTERed counts over every row (measured ~1.5x on 2M rows), and gives the same table.
COUNTS_SQL = """
WITH g AS (SELECT benchmark, grader, model, outcome, count(*) AS k FROM responses GROUP BY ALL)
SELECT benchmark, grader, model,
       sum(k)::BIGINT AS n,
       coalesce(sum(k) FILTER (WHERE outcome = 'correct'), 0)::BIGINT AS n_correct,
       coalesce(sum(k) FILTER (WHERE outcome = 'wrong'), 0)::BIGINT AS n_wrong,
       coalesce(sum(k) FILTER (WHERE outcome = 'abstained'), 0)::BIGINT AS n_abstained
FROM g
GROUP BY benchmark, grader, model
ORDER BY benchmark, grader, model
"""


def outcome_counts(con: duckdb.DuckDBPyConnection) -> pa.Table:
    return con.sql(COUNTS_SQL).to_arrow_table()


def score_table(counts: pa.Table, thresholds: Sequence[float], *, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95) -> pa.Table:
    """One row per (benchmark, grader, model, threshold) with rates, score, bootstrap CI and rank."""
    thresholds = parse_thresholds(thresholds)
    n = counts["n"].to_numpy().astype(np.int64)
    c = counts["n_correct"].to_numpy().astype(np.int64)
    w = counts["n_wrong"].to_numpy().astype(np.int64)
    a = counts["n_abstained"].to_numpy().astype(np.int64)
    pens = np.array([penalty(t) for t in thresholds])
    G, T = len(n), len(thresholds)
    score = (c[:, None] - w[:, None] * pens[None, :]) / np.maximum(n, 1)[:, None]  # (G, T)
    lo, hi = bootstrap_score_ci(c, w, a, pens, n_boot=n_boot, seed=seed, level=level, units=unit_ranges(counts))
    rep = lambda col: np.repeat(col, T)  # noqa: E731
    out = pa.table({
        "benchmark": pa.array(rep(counts["benchmark"].to_numpy(zero_copy_only=False)), pa.string()),
        "grader": pa.array(rep(counts["grader"].to_numpy(zero_copy_only=False)), pa.string()),
        "model": pa.array(rep(counts["model"].to_numpy(zero_copy_only=False)), pa.string()),
        "threshold": np.tile(np.array(thresholds, dtype=float), G),
        "penalty": np.tile(pens, G),
        "n": rep(n), "n_correct": rep(c), "n_wrong": rep(w), "n_abstained": rep(a),
        "accuracy": rep(c / np.maximum(n, 1)),
        "error_rate": rep(w / np.maximum(n, 1)),
        "abstention_rate": rep(a / np.maximum(n, 1)),
        "score": score.reshape(-1),
        "ci_low": lo.reshape(-1),
        "ci_high": hi.reshape(-1),
    })
    return _ranked(out, score.reshape(-1))


def _codes(values: np.ndarray) -> np.ndarray:
    """Integer codes in sorted order of the values (code-point order = DuckDB's byte order on UTF-8)."""
    return np.unique(values.astype(object), return_inverse=True)[1].reshape(-1)


def _ranked(out: pa.Table, score: np.ndarray) -> pa.Table:
    """``out`` with ``rank() OVER (PARTITION BY benchmark, grader, threshold ORDER BY score DESC)`` (ties share
    the lower rank), ordered by benchmark, grader, threshold, rank, model. numpy on the few (group x threshold)
    rows: no SQL connection to open per call."""
    n = out.num_rows
    if n == 0:
        return out.append_column(pa.field("rank", pa.int32()), pa.array([], pa.int32()))
    b, g, m = (_codes(out[k].to_numpy(zero_copy_only=False)) for k in ("benchmark", "grader", "model"))
    thr = out["threshold"].to_numpy()
    score = rank_key(score)
    order = np.lexsort((m, -score, thr, g, b))  # the last key sorts first
    b, g, thr, s = b[order], g[order], thr[order], score[order]
    new_part = np.ones(n, dtype=bool)
    new_part[1:] = (b[1:] != b[:-1]) | (g[1:] != g[:-1]) | (thr[1:] != thr[:-1])
    new_value = new_part.copy()
    new_value[1:] |= s[1:] != s[:-1]
    idx = np.arange(n)
    rank = np.maximum.accumulate(np.where(new_value, idx, 0)) - np.maximum.accumulate(np.where(new_part, idx, 0)) + 1
    return out.take(pa.array(order)).append_column(pa.field("rank", pa.int32()), pa.array(rank.astype(np.int32)))
