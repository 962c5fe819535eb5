"""The audit report: one self-contained HTML file rendered from the catalog alone.

Every value that came from a source (model names, outputs, reasons) passes through ``esc``; nothing in the page
loads anything from the network.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import duckdb

from audit.grading.curated import table2


def esc(value: Any) -> str:
    if value is None:
        return "<span class=na>&ndash;</span>"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1.5rem;color:#1d232b}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{border-bottom:2px solid #dde3ea;padding-bottom:.2rem;margin-top:2.2rem}
h3{margin-top:1.6rem}table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #dde3ea;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f6f9}td{font-variant-numeric:tabular-nums}.na{color:#98a2ad}
.lede{color:#4a5561}.pill{display:inline-block;padding:0 .4rem;border-radius:.6rem;background:#eef2f6;margin-right:.3rem}
.bad{background:#fde8e8}.good{background:#e6f6ea}pre{white-space:pre-wrap;max-height:8rem;overflow:auto;background:#f7f9fb;padding:.4rem}
"""


def render(con: duckdb.DuckDBPyConnection) -> str:
    parts: list[str] = []
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    n_resp, n_models, n_bench = con.sql(
        "SELECT count(*), count(DISTINCT model), count(DISTINCT benchmark) FROM responses").fetchall()[0]
    n_quar = con.sql("SELECT count(*) FROM quarantine").fetchall()[0][0]
    thresholds = [t for (t,) in con.sql("SELECT DISTINCT threshold FROM scores ORDER BY 1").fetchall()]
    parts.append("<h1>bench-audit report</h1>")
    parts.append(
        f"<p class=lede>Generated {esc(generated)}. {n_resp:,} published outputs from {n_models} models on "
        f"{n_bench} benchmarks, re-scored at confidence targets t = {esc(', '.join(f'{t:g}' for t in thresholds))} "
        f"(correct +1, abstain 0, wrong &minus;t/(1&minus;t)). {n_quar:,} records quarantined.</p>")
    parts.append(_summary(con))
    parts.append(_grading(con))
    parts.append(_leaderboards(con, thresholds))
    parts.append(_data_quality(con))
    parts.append(_provenance(con))
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>bench-audit report</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")


def _summary(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.sql("""
        SELECT benchmark, grader, threshold, count(*) AS n_models,
               count(*) FILTER (WHERE places_gained <> 0) AS n_moved, max(abs(places_gained)) AS max_move
        FROM rank_shift GROUP BY ALL ORDER BY benchmark, grader, threshold""").fetchall()
    out = ["<h2 id=summary>Summary: does the leaderboard change when guessing stops paying?</h2>"]
    if not rows:
        return out[0] + "<p>No scores yet: ingest and re-score first.</p>"
    out.append(_table(["benchmark", "grader", "threshold t", "models", "models whose rank moves", "largest move"],
                      rows))
    return "\n".join(out)


def _grading(con: duckdb.DuckDBPyConnection) -> str:
    out = ["<h2 id=grading>Grading census</h2>",
           "<h3>The paper's Table 2, replicated</h3>"]
    ours = {b: r for b, *r in con.sql(
        "SELECT benchmark, scheme, binary_grading, idk_credit, evidence_kinds FROM grading_schemes "
        "WHERE grader = 'reference'").fetchall()}
    rows = []
    for row in table2():
        mine = ours.get(row["benchmark"])
        rows.append([row["benchmark"], row["scoring"], row["binary"], row["idk_credit"],
                     mine[0] if mine else None, ("yes" if mine[1] else "no") if mine else None,
                     mine[2] if mine else None, ", ".join(mine[3]) if mine else None])
    out.append(_table(["benchmark", "paper: scoring", "paper: binary", "paper: IDK credit", "ours: scheme",
                       "ours: binary", "ours: IDK credit", "evidence"], rows))
    out.append("<h3>Every (benchmark, grader) unit</h3>")
    out.append(_table(
        ["scheme", "IDK credit", "units", "benchmarks", "units rewarding guessing"],
        con.sql("SELECT * FROM grading_census").fetchall()))
    units = con.sql("""SELECT benchmark, grader, scheme, idk_credit, implied_t, rewards_guessing,
                              array_to_string(evidence_kinds, ', '), conflicts
                       FROM grading_schemes WHERE grader <> 'reference' ORDER BY 1, 2""").fetchall()
    if units:
        out.append(_table(["benchmark", "grader", "scheme", "IDK credit", "implied t*", "rewards guessing",
                           "evidence", "conflicting evidence"], units))
    return "\n".join(out)


def _leaderboards(con: duckdb.DuckDBPyConnection, thresholds: list[float]) -> str:
    out = ["<h2 id=leaderboards>Leaderboards by confidence target</h2>"]
    units = con.sql("SELECT DISTINCT benchmark, grader FROM scores ORDER BY 1, 2").fetchall()
    for bench, grader in units:
        out.append(f"<h3>{esc(bench)} <span class=pill>{esc(grader)}</span></h3>")
        rows = con.sql("""
            SELECT s0.model, s0.accuracy, s0.error_rate, s0.abstention_rate,
                   list(s.rank ORDER BY s.threshold), list(s.score ORDER BY s.threshold),
                   list(s.ci_low ORDER BY s.threshold), list(s.ci_high ORDER BY s.threshold)
            FROM scores s0 JOIN scores s USING (benchmark, grader, model)
            WHERE s0.benchmark = ? AND s0.grader = ? AND s0.threshold = (SELECT min(threshold) FROM scores)
            GROUP BY ALL ORDER BY list(s.rank ORDER BY s.threshold)[-1], s0.model""", params=[bench, grader]).fetchall()
        headers = ["model", "accuracy", "error", "abstained"] + [f"t={t:g}: rank, score [95% CI]" for t in thresholds]
        body = []
        for model, acc, err, abst, ranks, scores, los, his in rows:
            cells = [f"#{r} {s:+.3f} [{lo:+.3f}, {hi:+.3f}]" for r, s, lo, hi in zip(ranks, scores, los, his)]
            body.append([model, acc, err, abst, *cells])
        out.append(_table(headers, body))
        samples = con.sql("""
            SELECT model, abstention_reason, coalesce(extracted_answer, response) FROM responses
            WHERE benchmark = ? AND grader = ? AND outcome = 'abstained' ORDER BY model, sample_id LIMIT 3""",
                          params=[bench, grader]).fetchall()
        if samples:
            out.append("<details><summary>Examples of detected abstentions</summary>" + "".join(
                f"<p>{esc(m)} <span class=pill>{esc(r)}</span></p><pre>{esc((t or '')[:500])}</pre>"
                for m, r, t in samples) + "</details>")
    return "\n".join(out)


def _data_quality(con: duckdb.DuckDBPyConnection) -> str:
    out = ["<h2 id=data-quality>Data quality</h2>"]
    out.append(_table(["source", "format", "records read", "accepted", "quarantined"], con.sql(
        "SELECT source_id, format, n_read, n_accepted, n_quarantined FROM sources ORDER BY 1").fetchall()))
    reasons = con.sql("""SELECT source_id, reason, count(*) AS n, min(locator) FROM quarantine
                         GROUP BY ALL ORDER BY n DESC LIMIT 50""").fetchall()
    if reasons:
        out.append("<h3>Quarantined records by reason</h3>")
        out.append(_table(["source", "reason", "records", "first locator"], reasons))
    failures = con.sql("SELECT target, reason, failed_at FROM source_failures ORDER BY failed_at").fetchall()
    out.append("<h3>Sources that could not be read</h3>")
    out.append(_table(["source", "reason", "when"], failures) if failures else "<p>None.</p>")
    return "\n".join(out)


def _provenance(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.sql("SELECT source_id, uri, revision, license, sha256 FROM sources ORDER BY 1").fetchall()
    return "<h2 id=provenance>Provenance</h2>" + _table(["source", "URI", "revision", "license", "sha256"], rows)


def write_report(con: duckdb.DuckDBPyConnection, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(con), encoding="utf-8")
    return out
