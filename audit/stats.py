"""Statistics on sufficient statistics: a score takes three values (1, 0, -penalty), so a bootstrap resample of
a model's answers is a multinomial draw of its (correct, abstained, wrong) counts. Exact, and O(groups x draws).
"""

from __future__ import annotations

import numpy as np

# Groups per chunk: bounds memory at CHUNK * n_boot * 3 int64s (~24 MB at 1,000 draws).
_CHUNK = 1000


def bootstrap_score_ci(c: np.ndarray, w: np.ndarray, a: np.ndarray, penalties: np.ndarray, *, n_boot: int = 1000,
                       seed: int = 0, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of the mean score for every group (rows) at every penalty (columns).

    One set of draws serves all penalties, so the intervals of one model at two thresholds are paired.
    Deterministic for a given seed.
    """
    c, w, a = (np.asarray(x, dtype=np.int64) for x in (c, w, a))
    n = c + w + a
    G, T = len(n), len(penalties)
    lo = np.full((G, T), np.nan)
    hi = np.full((G, T), np.nan)
    if G == 0 or n_boot <= 0:
        return lo, hi
    rng = np.random.default_rng(seed)
    q = [(1 - level) / 2, 1 - (1 - level) / 2]
    for start in range(0, G, _CHUNK):
        sl = slice(start, min(G, start + _CHUNK))
        nn = n[sl]
        safe = np.maximum(nn, 1)
        p = np.stack([c[sl] / safe, w[sl] / safe, a[sl] / safe], axis=1)
        p[nn == 0] = [0.0, 0.0, 1.0]
        draws = rng.multinomial(nn[:, None], p[:, None, :], size=(len(nn), n_boot))  # (g, B, 3)
        cc, ww = draws[..., 0], draws[..., 1]
        for j, pen in enumerate(penalties):
            s = (cc - pen * ww) / safe[:, None]
            lo[sl, j], hi[sl, j] = np.quantile(s, q, axis=1)
    return lo, hi
