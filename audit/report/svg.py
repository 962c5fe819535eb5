"""Hand-written inline SVG charts: no JavaScript, no fonts or files from anywhere, every label escaped."""

from __future__ import annotations

import html
import math
from typing import Sequence

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22"]
OUTCOME_COLOURS = {"correct": "#3a9d5d", "abstained": "#9aa5b1", "wrong": "#d64545"}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 2.5, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [round(start + i * step, 10) for i in range(int((hi - start) / step) + 1)]


def score_vs_threshold(series: Sequence[tuple[str, Sequence[float], Sequence[float], Sequence[float],
                                              Sequence[float]]], *, title: str, width: int = 720,
                       height: int = 300) -> str:
    """One line per model: (model, thresholds, scores, ci_low, ci_high); CI whiskers at each threshold."""
    pad_l, pad_r, pad_t, pad_b = 56, 230, 28, 40
    xs = [t for s in series for t in s[1]]
    ys = [v for s in series for arr in s[2:] for v in arr if v is not None and math.isfinite(v)]
    if not xs or not ys:
        return ""
    x0, x1 = min(xs), max(xs)
    x1 = x1 if x1 > x0 else x0 + 1
    y0, y1 = min(ys + [0.0]), max(ys + [0.0])
    span = (y1 - y0) or 1.0
    y0, y1 = y0 - 0.05 * span, y1 + 0.05 * span
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    X = lambda x: pad_l + (x - x0) / (x1 - x0) * pw  # noqa: E731
    Y = lambda y: pad_t + (y1 - y) / (y1 - y0) * ph  # noqa: E731
    out = [f"<svg class=chart role=img viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
           f"xmlns='http://www.w3.org/2000/svg' aria-label='{_e(title)}'><title>{_e(title)}</title>",
           f"<text x='{pad_l}' y='16' class=ct>{_e(title)}</text>"]
    for v in _nice_ticks(y0, y1):
        out.append(f"<line x1='{pad_l}' x2='{pad_l + pw}' y1='{Y(v):.1f}' y2='{Y(v):.1f}' "
                   f"stroke='{'#7a8794' if v == 0 else '#e3e8ee'}' stroke-width='{1.2 if v == 0 else 1}'/>"
                   f"<text x='{pad_l - 6}' y='{Y(v) + 4:.1f}' text-anchor='end' class=tk>{v:g}</text>")
    for t in sorted(set(xs)):
        out.append(f"<text x='{X(t):.1f}' y='{pad_t + ph + 16}' text-anchor='middle' class=tk>{t:g}</text>")
    out.append(f"<text x='{pad_l + pw / 2:.1f}' y='{height - 6}' text-anchor='middle' class=tk>"
               "confidence target t (wrong costs t/(1&#8722;t))</text>")
    for i, (model, ts, sc, lo, hi) in enumerate(series):
        col = PALETTE[i % len(PALETTE)]
        pts = " ".join(f"{X(t):.1f},{Y(s):.1f}" for t, s in zip(ts, sc))
        out.append(f"<g class=series><title>{_e(model)}</title>"
                   f"<polyline fill='none' stroke='{col}' stroke-width='2' points='{pts}'/>")
        for t, s, a, b in zip(ts, sc, lo, hi):
            if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
                out.append(f"<line x1='{X(t):.1f}' x2='{X(t):.1f}' y1='{Y(a):.1f}' y2='{Y(b):.1f}' stroke='{col}' "
                           "stroke-width='1.2' opacity='.6'/>")
            out.append(f"<circle cx='{X(t):.1f}' cy='{Y(s):.1f}' r='3' fill='{col}'>"
                       f"<title>{_e(model)}: t={t:g}, score {s:+.3f}</title></circle>")
        out.append("</g>")
        ly = pad_t + 8 + i * 17
        label = model if len(model) <= 30 else model[:29] + "\u2026"
        out.append(f"<rect x='{width - pad_r + 12}' y='{ly - 8}' width='10' height='10' fill='{col}'/>"
                   f"<text x='{width - pad_r + 27}' y='{ly + 1}' class=lg>{_e(label)}</text>")
    out.append("</svg>")
    return "".join(out)


def outcome_bars(rows: Sequence[tuple[str, float, float, float]], *, title: str, width: int = 720) -> str:
    """Stacked horizontal bars per model: (model, accuracy, abstention_rate, error_rate)."""
    pad_l, pad_r, bar, gap = 230, 20, 16, 6
    height = 44 + len(rows) * (bar + gap) + 18
    pw = width - pad_l - pad_r
    out = [f"<svg class=chart role=img viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
           f"xmlns='http://www.w3.org/2000/svg' aria-label='{_e(title)}'><title>{_e(title)}</title>",
           f"<text x='8' y='16' class=ct>{_e(title)}</text>"]
    lx = pad_l
    for name, col in OUTCOME_COLOURS.items():
        out.append(f"<rect x='{lx}' y='24' width='10' height='10' fill='{col}'/>"
                   f"<text x='{lx + 14}' y='33' class=lg>{name}</text>")
        lx += 100
    for i, (model, acc, abst, err) in enumerate(rows):
        y = 44 + i * (bar + gap)
        label = model if len(model) <= 34 else model[:33] + "\u2026"
        out.append(f"<text x='{pad_l - 6}' y='{y + bar - 4}' text-anchor='end' class=lg>{_e(label)}</text>")
        x = pad_l
        for name, v in (("correct", acc), ("abstained", abst), ("wrong", err)):
            w = max(0.0, v) * pw
            out.append(f"<rect x='{x:.1f}' y='{y}' width='{w:.1f}' height='{bar}' fill='{OUTCOME_COLOURS[name]}'>"
                       f"<title>{_e(model)}: {name} {v:.1%}</title></rect>")
            if w > 34:
                out.append(f"<text x='{x + 4:.1f}' y='{y + bar - 4}' class=bl>{v:.0%}</text>")
            x += w
    out.append("</svg>")
    return "".join(out)


def diverging_bars(rows: Sequence[tuple[str, float]], *, title: str, width: int = 720,
                   positive: str = "#d64545", negative: str = "#3a9d5d") -> str:
    """Horizontal bars around zero: (label, value)."""
    pad_l, pad_r, bar, gap = 300, 60, 14, 5
    height = 30 + len(rows) * (bar + gap) + 10
    vmax = max([abs(v) for _, v in rows] + [1e-9])
    mid = pad_l + (width - pad_l - pad_r) / 2
    half = (width - pad_l - pad_r) / 2
    out = [f"<svg class=chart role=img viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
           f"xmlns='http://www.w3.org/2000/svg' aria-label='{_e(title)}'><title>{_e(title)}</title>",
           f"<text x='8' y='16' class=ct>{_e(title)}</text>",
           f"<line x1='{mid:.1f}' x2='{mid:.1f}' y1='24' y2='{height - 6}' stroke='#7a8794'/>"]
    for i, (label, v) in enumerate(rows):
        y = 28 + i * (bar + gap)
        w = abs(v) / vmax * half
        x = mid if v >= 0 else mid - w
        short = label if len(label) <= 44 else label[:43] + "\u2026"
        out.append(f"<text x='{pad_l - 6}' y='{y + bar - 3}' text-anchor='end' class=lg>{_e(short)}</text>"
                   f"<rect x='{x:.1f}' y='{y}' width='{w:.1f}' height='{bar}' "
                   f"fill='{positive if v >= 0 else negative}'><title>{_e(label)}: {v:+.3f}</title></rect>"
                   f"<text x='{(mid + w + 4) if v >= 0 else (mid + 4):.1f}' y='{y + bar - 3}' class=tk>"
                   f"{v:+.3f}</text>")
    out.append("</svg>")
    return "".join(out)


def risk_coverage(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], *, title: str,
                  width: int = 720, height: int = 280) -> str:
    """Accuracy among answered vs coverage, one line per model: (label, coverage, accuracy)."""
    pad_l, pad_r, pad_t, pad_b = 50, 230, 28, 40
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    X = lambda x: pad_l + x * pw  # noqa: E731
    Y = lambda y: pad_t + (1 - y) * ph  # noqa: E731
    out = [f"<svg class=chart role=img viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
           f"xmlns='http://www.w3.org/2000/svg' aria-label='{_e(title)}'><title>{_e(title)}</title>",
           f"<text x='{pad_l}' y='16' class=ct>{_e(title)}</text>"]
    for v in (0, 0.25, 0.5, 0.75, 1):
        out.append(f"<line x1='{pad_l}' x2='{pad_l + pw}' y1='{Y(v):.1f}' y2='{Y(v):.1f}' stroke='#e3e8ee'/>"
                   f"<text x='{pad_l - 6}' y='{Y(v) + 4:.1f}' text-anchor='end' class=tk>{v:g}</text>"
                   f"<text x='{X(v):.1f}' y='{pad_t + ph + 16}' text-anchor='middle' class=tk>{v:g}</text>")
    out.append(f"<text x='{pad_l + pw / 2:.1f}' y='{height - 6}' text-anchor='middle' class=tk>coverage "
               "(share answered); y: accuracy</text>")
    for i, (label, cov, acc) in enumerate(series):
        col = PALETTE[i % len(PALETTE)]
        pts = " ".join(f"{X(c):.1f},{Y(a):.1f}" for c, a in zip(cov, acc)
                       if c is not None and a is not None and math.isfinite(c) and math.isfinite(a))
        out.append(f"<polyline fill='none' stroke='{col}' stroke-width='2' points='{pts}'><title>{_e(label)}"
                   "</title></polyline>")
        short = label if len(label) <= 30 else label[:29] + "\u2026"
        ly = pad_t + 8 + i * 17
        out.append(f"<rect x='{width - pad_r + 12}' y='{ly - 8}' width='10' height='10' fill='{col}'/>"
                   f"<text x='{width - pad_r + 27}' y='{ly + 1}' class=lg>{_e(short)}</text>")
    out.append("</svg>")
    return "".join(out)
