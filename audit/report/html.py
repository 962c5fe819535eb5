"""The audit report: one self-contained HTML file rendered from the catalog alone.

Every value that came from a source (model names, outputs, reasons) passes through ``esc``; charts are inline SVG
generated here (audit/report/svg.py); nothing in the page loads anything from the network and it has no script.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Sequence

import duckdb

from audit.report import content as C


def esc(value: Any) -> str:
    if value is None:
        return "<span class=na>&ndash;</span>"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in r) + "</tr>" for r in rows)
    return (f"<div class=scroll><table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            "</table></div>")


CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:1.2rem 1.5rem;color:#1d232b}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{border-bottom:2px solid #dde3ea;padding-bottom:.2rem;margin-top:2.2rem}
h3{margin-top:1.6rem}table{border-collapse:collapse;margin:.6rem 0;font-size:.86rem}
th,td{border:1px solid #dde3ea;padding:.25rem .5rem;text-align:left;vertical-align:top}td{max-width:18rem;overflow-wrap:anywhere}
th{background:#f3f6f9;position:sticky;top:0}td{font-variant-numeric:tabular-nums}.na{color:#98a2ad}
.scroll{overflow-x:auto;max-width:100%}
.lede{color:#4a5561}.pill{display:inline-block;padding:0 .45rem;border-radius:.6rem;background:#eef2f6;margin-left:.4rem;font-size:.8rem;font-weight:normal}
pre{white-space:pre-wrap;max-height:8rem;overflow:auto;background:#f7f9fb;padding:.4rem;margin:.2rem 0 .8rem}
nav{background:#f7f9fb;border:1px solid #dde3ea;padding:.4rem .8rem;border-radius:.4rem}nav a{margin-right:1rem}
svg.chart{max-width:100%;height:auto;display:block;margin:.6rem 0}svg .ct{font-size:13px;font-weight:600;fill:#1d232b}
svg .tk{font-size:11px;fill:#4a5561}svg .lg{font-size:11.5px;fill:#1d232b}svg .bl{font-size:10px;fill:#fff}
details{margin:.5rem 0}summary{cursor:pointer;color:#24527a}
"""


def _block(b: Any) -> str:
    if isinstance(b, C.H3):
        return f"<h3>{esc(b.text)}" + (f"<span class=pill>{esc(b.pill)}</span>" if b.pill else "") + "</h3>"
    if isinstance(b, C.P):
        return f"<p class='{esc(b.cls)}'>{esc(b.text)}</p>"
    if isinstance(b, C.Table):
        return (f"<p class=lede>{esc(b.caption)}</p>" if b.caption else "") + _table(b.headers, b.rows)
    if isinstance(b, C.Chart):
        return f"<figure>{b.svg}</figure>" if b.svg else ""
    if isinstance(b, C.Pre):
        return f"<p class=lede>{esc(b.label)}</p><pre>{esc(b.text)}</pre>"
    if isinstance(b, C.Details):
        return f"<details><summary>{esc(b.summary)}</summary>" + "".join(_block(x) for x in b.blocks) + "</details>"
    raise TypeError(f"unknown report block {type(b).__name__}")


def render(con: duckdb.DuckDBPyConnection) -> str:
    lede, secs = C.sections(con)
    nav = "<nav>" + "".join(f"<a href='#{s.id}'>{esc(s.title.split(':')[0])}</a>" for s in secs) + "</nav>"
    body = [f"<h1>bench-audit report</h1><p class=lede>{esc(lede)}</p>", nav]
    for s in secs:
        body.append(f"<section><h2 id={s.id}>{esc(s.title)}</h2>" + "\n".join(_block(b) for b in s.blocks)
                    + "</section>")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:\">"
            f"<title>bench-audit report</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def write_report(con: duckdb.DuckDBPyConnection, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(con), encoding="utf-8")
    return out
