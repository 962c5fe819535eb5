"""Statistics on sufficient statistics: a score takes three values (1, 0, -penalty), so a bootstrap resample of
a model's answers is a multinomial draw of its (correct, abstained, wrong) counts. Exact, and O(groups x draws).
"""

from __future__ import annotations

import math
import zlib
from typing import Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Groups per chunk: bounds memory at CHUNK * n_boot * (2 + thresholds) numbers (~56 MB at 1,000 draws, 5 thresholds).
_CHUNK = 1000


def bootstrap_score_ci(c: np.ndarray, w: np.ndarray, a: np.ndarray, penalties: np.ndarray, *, n_boot: int = 1000,
                       seed: int = 0, level: float = 0.95,
                       units: Sequence[tuple[int, int, tuple[str, ...]]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of the mean score for every group (rows) at every penalty (columns).

    One set of draws serves all penalties, so the intervals of one model at two thresholds are paired.
    Deterministic for a given seed. ``units``: (start, stop, key) row ranges, each drawn from its own generator
    (seed + key), so a unit's intervals do not depend on which other units are in the table (the whole catalog,
    or one benchmark's partition of it); default: all rows one unit.
    """
    c, w, a = (np.asarray(x, dtype=np.int64) for x in (c, w, a))
    n = c + w + a
    G, T = len(n), len(penalties)
    lo = np.full((G, T), np.nan)
    hi = np.full((G, T), np.nan)
    if G == 0 or n_boot <= 0:
        return lo, hi
    q = [(1 - level) / 2, 1 - (1 - level) / 2]
    pens = np.asarray(penalties, dtype=float)
    for u0, u1, key in units if units is not None else [(0, G, ())]:
        rng = _rng(seed, *key)
        for start in range(u0, u1, _CHUNK):
            _draw_scores(rng, slice(start, min(u1, start + _CHUNK)), n, c, w, pens, n_boot, q, lo, hi)
    return lo, hi


def _draw_scores(rng: np.random.Generator, sl: slice, n: np.ndarray, c: np.ndarray, w: np.ndarray,
                 pens: np.ndarray, n_boot: int, q: list[float], lo: np.ndarray, hi: np.ndarray) -> None:
    """The score bootstrap of the groups in ``sl``, into ``lo``/``hi``."""
    nn = n[sl]
    safe = np.maximum(nn, 1)
    # A multinomial (correct, wrong, abstained) draw as two binomials (same distribution, ~2x cheaper than
    # numpy's multinomial with per-group probabilities): correct ~ Bin(n, p_c), wrong ~ Bin(n - correct,
    # p_w / (1 - p_c)).
    p_c = c[sl] / safe
    rest = 1.0 - p_c
    p_w = np.divide(w[sl] / safe, rest, out=np.zeros(len(nn)), where=rest > 0).clip(0.0, 1.0)
    cc = rng.binomial(nn[:, None], p_c[:, None], size=(len(nn), n_boot))  # (g, B)
    ww = rng.binomial(nn[:, None] - cc, p_w[:, None])
    s = (cc[:, None, :] - pens[None, :, None] * ww[:, None, :]) / safe[:, None, None]  # (g, T, B)
    lo[sl], hi[sl] = np.quantile(s, q, axis=2)  # one quantile call for every penalty


# ---------------------------------------------------------------------------------------------------------------
# Paired statistics on the same samples. A model's per-sample outcome takes three values, so the joint outcome of
# K models on one sample takes at most 4^K values (missing included); the samples of a (benchmark, grader) unit
# are summarised exactly by how often each observed joint pattern occurs. Resampling samples with replacement is a
# multinomial draw of those pattern counts: the same bootstrap as resampling samples, without touching samples.
# ---------------------------------------------------------------------------------------------------------------

OUTCOMES = ("correct", "wrong", "abstained")

# One outcome per (benchmark, grader, model, sample): if two sources hold the same sample, the first source wins.
PER_SAMPLE_SQL = """
SELECT benchmark, grader, model, sample_id, arg_min(outcome, source_id) AS outcome
FROM responses GROUP BY benchmark, grader, model, sample_id
"""

# Joint pattern counts per unit: code 0 = model has no answer for the sample, 1 correct, 2 wrong, 3 abstained.
PATTERNS_SQL = f"""
WITH s AS ({PER_SAMPLE_SQL}),
mi AS (SELECT benchmark, grader, model,
              row_number() OVER (PARTITION BY benchmark, grader ORDER BY model) - 1 AS mi
       FROM (SELECT DISTINCT benchmark, grader, model FROM s)),
ids AS (SELECT DISTINCT benchmark, grader, sample_id FROM s),
dense AS (
    SELECT ids.benchmark, ids.grader, ids.sample_id, mi.mi,
           CASE s.outcome WHEN 'correct' THEN '1' WHEN 'wrong' THEN '2' WHEN 'abstained' THEN '3' ELSE '0' END AS code
    FROM ids JOIN mi USING (benchmark, grader)
    LEFT JOIN s ON s.benchmark = ids.benchmark AND s.grader = ids.grader AND s.sample_id = ids.sample_id
               AND s.model = mi.model),
pat AS (SELECT benchmark, grader, sample_id, string_agg(code, '' ORDER BY mi) AS pattern
        FROM dense GROUP BY ALL)
SELECT p.benchmark, p.grader, m.models, p.pattern, count(*)::BIGINT AS n
FROM pat p JOIN (SELECT benchmark, grader, list(model ORDER BY mi) AS models FROM mi GROUP BY ALL) m
     USING (benchmark, grader)
GROUP BY ALL ORDER BY p.benchmark, p.grader, p.pattern
"""

# Joint outcome counts of every pair of models on the samples both answered (9 cells, a x b).
PAIR_SQL = f"""
WITH s AS ({PER_SAMPLE_SQL})
SELECT a.benchmark, a.grader, a.model AS model_a, b.model AS model_b, count(*)::BIGINT AS n_shared,
       {", ".join(f"count(*) FILTER (WHERE a.outcome = '{x}' AND b.outcome = '{y}')::BIGINT AS {x[0]}{y[0]}"
                  for x in OUTCOMES for y in OUTCOMES)}
FROM s a JOIN s b ON a.benchmark = b.benchmark AND a.grader = b.grader AND a.sample_id = b.sample_id
                 AND a.model < b.model
GROUP BY ALL ORDER BY 1, 2, 3, 4
"""
_CELLS = [f"{x[0]}{y[0]}" for x in OUTCOMES for y in OUTCOMES]


def multinomial_draws(rng: np.random.Generator, n: np.ndarray, p: np.ndarray, size: int) -> np.ndarray:
    """``size`` multinomial draws for each row: n (G,), p (G, K) -> (G, size, K), as K - 1 conditional binomial
    draws vectorised over rows and draws (numpy's multinomial with per-row parameters loops per row)."""
    G, K = p.shape
    out = np.zeros((G, size, K), np.int64)
    left = np.repeat(np.asarray(n, np.int64)[:, None], size, axis=1)
    rest = np.ones(G)
    for k in range(K - 1):
        with np.errstate(invalid="ignore", divide="ignore"):
            q = np.clip(np.where(rest > 1e-15, p[:, k] / rest, 0.0), 0.0, 1.0)
        out[:, :, k] = rng.binomial(left, q[:, None])
        left -= out[:, :, k]
        rest = rest - p[:, k]
    out[:, :, K - 1] = left
    return out


def _rng(seed: int, *key: str) -> np.random.Generator:
    """A generator per unit, independent of the order units are processed in."""
    return np.random.default_rng([seed, zlib.crc32("\x1f".join(key).encode("utf-8"))])


def _values(pen: float) -> np.ndarray:
    return np.array([1.0, -pen, 0.0])  # correct, wrong, abstained


def sign_test_p(k_pos: np.ndarray, k_neg: np.ndarray) -> np.ndarray:
    """Exact two-sided sign test: min(1, 2 P(X <= min(k_pos, k_neg))), X ~ Binomial(k_pos + k_neg, 1/2).

    One cumulative distribution per distinct n, from a table of log factorials (no per-row Python loop)."""
    kp, kn = np.asarray(k_pos, np.int64), np.asarray(k_neg, np.int64)
    n, k = kp + kn, np.minimum(kp, kn)
    out = np.ones(len(n))
    if len(n) == 0 or n.max() == 0:
        return out
    logfact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n.max() + 1)))])
    for m in np.unique(n[n > 0]):
        j = np.arange(m + 1)
        cdf = np.cumsum(np.exp(logfact[m] - logfact[j] - logfact[m - j] - m * math.log(2)))
        rows = n == m
        out[rows] = np.minimum(1.0, 2.0 * cdf[k[rows]])
    return out


def holm_adjust(p: np.ndarray, family: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values, within each family (rows with equal ``family`` codes).

    Sorted within a family, p_(i) becomes max over j <= i of min(1, (m - j + 1) p_(j)); it controls the
    family-wise error rate at any alpha without assuming the tests are independent. Vectorised: one lexsort, and a
    running maximum over all families at once (each family is lifted above the previous one by 2, so the maximum
    never crosses a family boundary). NaN p-values stay NaN and do not count towards m.
    """
    p = np.asarray(p, float)
    family = np.asarray(family)
    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return out
    idx = np.flatnonzero(ok)
    _, fam = np.unique(family[idx], return_inverse=True)
    order = np.lexsort((p[idx], fam))
    f_sorted, p_sorted = fam[order], p[idx][order]
    starts = np.flatnonzero(np.r_[True, f_sorted[1:] != f_sorted[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    pos = np.arange(len(order)) - np.repeat(starts, sizes)  # 0-based position within the family
    m = np.repeat(sizes, sizes)
    scaled = np.minimum(1.0, (m - pos) * p_sorted)
    lifted = np.maximum.accumulate(scaled + 2.0 * f_sorted) - 2.0 * f_sorted
    out[idx[order]] = lifted
    return out


def pairwise_table(con: duckdb.DuckDBPyConnection, thresholds: Sequence[float], *, n_boot: int = 1000,
                   seed: int = 0, level: float = 0.95) -> pa.Table:
    """Paired comparison of every two models of a unit on the samples both answered, at every threshold.

    diff = score_a - score_b on the shared samples; the CI is a paired bootstrap (multinomial on the 9 joint
    outcome cells); prob_a_better is the share of draws with diff > 0; sign_p is the exact sign test on the
    samples where the two per-sample scores differ.
    """
    from audit.scoring import penalty

    thresholds = list(thresholds)
    pens = np.array([penalty(t) for t in thresholds])
    pairs = con.sql(PAIR_SQL).to_arrow_table()
    P, T = pairs.num_rows, len(thresholds)
    cols: dict[str, list] = {k: [] for k in ("benchmark", "grader", "model_a", "model_b", "threshold", "n_shared",
                                             "score_a", "score_b", "diff", "ci_low", "ci_high", "prob_a_better",
                                             "n_a_better", "n_b_better", "sign_p", "sign_p_holm")}
    if P == 0:
        return _pairwise_arrow(cols)
    cells = np.stack([pairs[c].to_numpy().astype(np.int64) for c in _CELLS], axis=1)  # (P, 9)
    codes = unit_codes(pairs)  # one per (benchmark, grader); the SQL orders pairs by unit
    n = pairs["n_shared"].to_numpy().astype(np.int64)
    q = [(1 - level) / 2, 1 - (1 - level) / 2]
    vals = np.stack([_values(p) for p in pens])  # (T, 3)
    va, vb = np.repeat(vals, 3, axis=1), np.tile(vals, (1, 3))  # (T, 9): a's and b's per-sample score per cell
    d = va - vb
    score_a, score_b = cells @ va.T / n[:, None], cells @ vb.T / n[:, None]  # (P, T)
    lo, hi, better = (np.full((P, T), np.nan) for _ in range(3))
    if n_boot > 0:
        # one generator per unit (seed + the unit's name), pairs in the SQL's order: the draws of a unit do not
        # depend on which other units are in the catalog (or in a per-benchmark partition of it)
        for u0, u1, key in unit_ranges(pairs):
            rng = _rng(seed, *key)
            for s0 in range(u0, u1, 200):
                sl = slice(s0, min(u1, s0 + 200))
                draws = multinomial_draws(rng, n[sl], cells[sl] / n[sl, None], n_boot)
                boot = draws @ d.T / n[sl, None, None]  # (p, B, T)
                lo[sl], hi[sl] = np.quantile(boot, q, axis=1)
                better[sl] = (boot > 1e-12).mean(axis=1)
    rep = lambda col: np.repeat(np.asarray(col, dtype=object), T).tolist()  # noqa: E731
    cols.update({
        "benchmark": rep(pairs["benchmark"].to_pylist()), "grader": rep(pairs["grader"].to_pylist()),
        "model_a": rep(pairs["model_a"].to_pylist()), "model_b": rep(pairs["model_b"].to_pylist()),
        "threshold": np.tile(np.asarray(thresholds, float), P).tolist(), "n_shared": np.repeat(n, T).tolist(),
        "score_a": score_a.ravel().tolist(), "score_b": score_b.ravel().tolist(),
        "diff": (score_a - score_b).ravel().tolist(), "ci_low": lo.ravel().tolist(), "ci_high": hi.ravel().tolist(),
        "prob_a_better": better.ravel().tolist(),
        "n_a_better": (cells[:, None, :] * (d > 0)[None]).sum(-1).ravel().tolist(),
        "n_b_better": (cells[:, None, :] * (d < 0)[None]).sum(-1).ravel().tolist(),
    })
    cols["sign_p"] = list(sign_test_p(np.array(cols["n_a_better"]), np.array(cols["n_b_better"])))
    # the family of a test: every pair of the unit's models at one threshold (the comparisons a reader scans)
    family = np.repeat(codes, T) * T + np.tile(np.arange(T), P)
    cols["sign_p_holm"] = list(holm_adjust(np.array(cols["sign_p"]), family))
    return _pairwise_arrow(cols)


def unit_codes(pairs: pa.Table) -> np.ndarray:
    """An integer per (benchmark, grader) of ``pairs``."""
    keys = pc.binary_join_element_wise(pairs["benchmark"], pairs["grader"], "\x1f")
    return pc.index_in(keys, pc.unique(keys)).to_numpy(zero_copy_only=False).astype(np.int64)


def unit_ranges(table: pa.Table) -> list[tuple[int, int, tuple[str, ...]]]:
    """(start, stop, (benchmark, grader)) for each run of rows of one unit, in ``table``'s order (sorted by unit)."""
    if not table.num_rows:
        return []
    codes = unit_codes(table)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]).tolist() + [table.num_rows]
    bench, grader = table["benchmark"], table["grader"]
    return [(u0, u1, (bench[u0].as_py(), grader[u0].as_py())) for u0, u1 in zip(starts[:-1], starts[1:])]


def _pairwise_arrow(cols: dict[str, list]) -> pa.Table:
    types = {"benchmark": pa.string(), "grader": pa.string(), "model_a": pa.string(), "model_b": pa.string(),
             "n_shared": pa.int64(), "n_a_better": pa.int64(), "n_b_better": pa.int64()}
    return pa.table({k: pa.array(v, types.get(k, pa.float64()), from_pandas=True) for k, v in cols.items()})


def _ranks(s: np.ndarray) -> np.ndarray:
    """Competition ranks (1 = best, ties share the better rank) along the last axis; like SQL rank().
    O(M log M) per row by sorting, so large leaderboards do not need an M x M comparison."""
    from audit.scoring import rank_key

    s = rank_key(s)
    order = np.argsort(-s, axis=-1, kind="stable")
    desc = np.take_along_axis(s, order, axis=-1)
    M = s.shape[-1]
    pos = np.broadcast_to(np.arange(M), desc.shape)
    new = np.ones(desc.shape, bool)
    new[..., 1:] = desc[..., 1:] != desc[..., :-1]
    first = np.maximum.accumulate(np.where(new, pos, 0), axis=-1)
    out = np.empty(s.shape, np.int64)
    np.put_along_axis(out, order, first + 1, axis=-1)
    return out


def _tau_chunked(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b over the first axis of (B, M) arrays, in chunks bounding memory at ~4M pair cells."""
    M = x.shape[-1]
    step = max(1, 4_000_000 // max(1, M * M))
    return np.concatenate([_tau(x[i:i + step], y[i:i + step])[0] for i in range(0, len(x), step)]) \
        if len(x) else np.zeros(0)


def _tau(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Kendall tau-b of x and y along the last axis, with the concordant and discordant pair counts."""
    x, y = np.round(x, 12), np.round(y, 12)
    M = x.shape[-1]
    iu = np.triu_indices(M, 1)
    sx = np.sign(x[..., :, None] - x[..., None, :])[..., iu[0], iu[1]]
    sy = np.sign(y[..., :, None] - y[..., None, :])[..., iu[0], iu[1]]
    prod = sx * sy
    conc, disc = (prod > 0).sum(-1), (prod < 0).sum(-1)
    n0 = len(iu[0])
    denom = np.sqrt((n0 - (sx == 0).sum(-1)) * (n0 - (sy == 0).sum(-1)).astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.where(denom > 0, prod.sum(-1) / np.where(denom > 0, denom, 1), np.nan)
    return tau, conc, disc, n0


def rank_tables(con: duckdb.DuckDBPyConnection, thresholds: Sequence[float], *, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95) -> tuple[pa.Table, pa.Table]:
    """(rank_stability, leaderboard_agreement) from one joint bootstrap of each unit's samples.

    rank_stability: per (unit, model, threshold) the observed rank, its rank at t = 0, the bootstrap rank
    distribution (mean, percentile interval, P(rank 1)) and p_shift, the share of draws in which the rank moves
    between t = 0 and t in the observed direction (up, down, or not at all), both ranks taken in the same draw.
    leaderboard_agreement: per (unit, threshold) Kendall tau-b between the t = 0 and the t leaderboard, with
    its bootstrap interval and the concordant / discordant model pairs.
    """
    from audit.scoring import penalty

    thresholds = sorted(set(float(t) for t in thresholds) | {0.0})
    pens = np.array([penalty(t) for t in thresholds])
    T = len(thresholds)
    q = [(1 - level) / 2, 1 - (1 - level) / 2]
    pat = con.sql(PATTERNS_SQL).to_arrow_table()
    rs: dict[str, list] = {k: [] for k in ("benchmark", "grader", "model", "threshold", "rank", "rank_binary",
                                           "places_gained", "mean_rank", "rank_ci_low", "rank_ci_high", "p_rank1",
                                           "p_shift", "n_boot")}
    la: dict[str, list] = {k: [] for k in ("benchmark", "grader", "threshold", "n_models", "n_pairs",
                                           "n_concordant", "n_discordant", "kendall_tau", "tau_ci_low",
                                           "tau_ci_high")}
    if pat.num_rows:
        b_all, g_all = pat["benchmark"].to_pylist(), pat["grader"].to_pylist()
        keys = list(dict.fromkeys(zip(b_all, g_all)))
        idx: dict[tuple[str, str], list[int]] = {}
        for i, k in enumerate(zip(b_all, g_all)):
            idx.setdefault(k, []).append(i)
        patterns, counts, models = pat["pattern"].to_pylist(), pat["n"].to_numpy(), pat["models"].to_pylist()
        for key in keys:
            rows = idx[key]
            mods = models[rows[0]]
            M = len(mods)
            codes = np.frombuffer("".join(patterns[r] for r in rows).encode("ascii"), np.uint8).reshape(
                len(rows), M) - ord("0")  # (Pn, M)
            cnt = counts[rows].astype(np.int64)
            ind = [(codes == k).astype(np.int64) for k in (1, 2, 3)]  # correct, wrong, abstained indicators

            def scores(pc: np.ndarray) -> np.ndarray:  # pattern counts (..., Pn) -> scores (..., T, M)
                C, W, A = (pc @ x for x in ind)
                N = np.maximum(C + W + A, 1)
                return (C[..., None, :] - pens[:, None] * W[..., None, :]) / N[..., None, :]

            obs = scores(cnt)  # (T, M)
            r_obs = _ranks(obs)
            rng = _rng(seed, *key)
            boot = np.concatenate([scores(rng.multinomial(cnt.sum(), cnt / cnt.sum(), size=min(250, n_boot - s)))
                                   for s in range(0, n_boot, 250)]) if n_boot > 0 else np.zeros((0, T, M))
            r_boot = _ranks(boot)  # (B, T, M)
            for j, t in enumerate(thresholds):
                d_obs = np.sign(r_obs[0] - r_obs[j])
                d_boot = np.sign(r_boot[:, 0] - r_boot[:, j])
                for m in range(M):
                    rb = r_boot[:, j, m]
                    rs["benchmark"].append(key[0]); rs["grader"].append(key[1]); rs["model"].append(mods[m])
                    rs["threshold"].append(t); rs["rank"].append(int(r_obs[j, m]))
                    rs["rank_binary"].append(int(r_obs[0, m]))
                    rs["places_gained"].append(int(r_obs[0, m] - r_obs[j, m]))
                    if len(rb):
                        lo, hi = np.quantile(rb, q)
                        rs["mean_rank"].append(float(rb.mean())); rs["rank_ci_low"].append(float(lo))
                        rs["rank_ci_high"].append(float(hi)); rs["p_rank1"].append(float((rb == 1).mean()))
                        rs["p_shift"].append(float((d_boot[:, m] == d_obs[m]).mean()))
                    else:
                        for k in ("mean_rank", "rank_ci_low", "rank_ci_high", "p_rank1", "p_shift"):
                            rs[k].append(np.nan)
                    rs["n_boot"].append(len(rb))
                tau, conc, disc, n0 = _tau(obs[0], obs[j])
                tb = _tau_chunked(boot[:, 0], boot[:, j])
                tb = tb[~np.isnan(tb)]
                lo, hi = np.quantile(tb, q) if len(tb) else (np.nan, np.nan)
                la["benchmark"].append(key[0]); la["grader"].append(key[1]); la["threshold"].append(t)
                la["n_models"].append(M); la["n_pairs"].append(n0); la["n_concordant"].append(int(conc))
                la["n_discordant"].append(int(disc)); la["kendall_tau"].append(float(tau))
                la["tau_ci_low"].append(float(lo)); la["tau_ci_high"].append(float(hi))
    ints = {"rank", "rank_binary", "places_gained", "n_boot", "n_models", "n_pairs", "n_concordant", "n_discordant"}
    strs = {"benchmark", "grader", "model"}

    def arrow(cols: dict[str, list]) -> pa.Table:
        return pa.table({k: pa.array(v, pa.string() if k in strs else pa.int64() if k in ints else pa.float64(),
                                     from_pandas=True)  # NaN (undefined) -> null
                         for k, v in cols.items()})

    return arrow(rs), arrow(la)


def guessing_premium_table(scores: pa.Table, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pa.Table:
    """What binary grading pays each model for answering instead of abstaining, per (unit, model, threshold).

    premium(t) = score(0) - score(t) = penalty(t) * error_rate: the score the wrong answers would have cost at
    target t and that binary grading waives. relative_premium subtracts the unit's mean premium at t (what moves
    ranks). break_even_t = n_correct / (n_correct + n_wrong): above it the model scores below an always-abstain
    model (score 0). premium_ci_* is a binomial bootstrap of the error rate times the penalty.
    """
    con = duckdb.connect()
    try:
        con.register("scores", scores)
        base = con.sql("""
            SELECT s.benchmark, s.grader, s.model, s.threshold, s.penalty, s.n, s.accuracy, s.error_rate,
                   s.abstention_rate, b.score AS score_binary, s.score AS score_at_threshold,
                   b.score - s.score AS premium,
                   b.score - s.score - avg(b.score - s.score) OVER (PARTITION BY s.benchmark, s.grader, s.threshold)
                       AS relative_premium,
                   b.rank - s.rank AS places_gained,
                   CASE WHEN s.n_correct + s.n_wrong > 0 THEN s.n_correct / (s.n_correct + s.n_wrong) END
                       AS break_even_t,
                   s.n_wrong
            FROM scores s JOIN scores b ON b.benchmark = s.benchmark AND b.grader = s.grader AND b.model = s.model
                                       AND b.threshold = 0
            WHERE s.threshold > 0 ORDER BY s.benchmark, s.grader, s.threshold, premium DESC, s.model
        """).to_arrow_table()
    finally:
        con.close()
    n, w, pen = (base[c].to_numpy() for c in ("n", "n_wrong", "penalty"))
    q = [(1 - level) / 2, 1 - (1 - level) / 2]
    lo, hi = np.full(len(n), np.nan), np.full(len(n), np.nan)
    if len(n) and n_boot > 0:
        nn = np.maximum(n, 1)
        for u0, u1, key in unit_ranges(base):  # a generator per unit: a partition of the catalog draws the same
            rng = _rng(seed, *key)
            sl = slice(u0, u1)
            draws = rng.binomial(n[sl, None], (w[sl] / nn[sl])[:, None], size=(u1 - u0, n_boot)) / nn[sl, None]
            qq = np.quantile(draws, q, axis=1)
            lo[sl], hi[sl] = qq[0] * pen[sl], qq[1] * pen[sl]
    base = base.drop_columns(["n_wrong"])
    return base.append_column("premium_ci_low", pa.array(lo, pa.float64())).append_column(
        "premium_ci_high", pa.array(hi, pa.float64()))
