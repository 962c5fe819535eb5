"""The report as Markdown (for a paper or an issue) and as Prefect artifacts (markdown + tables).

Same sections as the HTML report (audit/report/content.py). Markdown renderers accept inline HTML, so every value
is entity-escaped (&, <, >) and pipes are escaped inside tables: a model output can never become markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from audit.report import content as C


def md_escape(value: Any, *, table: bool = False) -> str:
    if value is None:
        return "\u2013"
    if isinstance(value, float):
        value = f"{value:.3f}"
    s = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\`*_[]":
        s = s.replace(ch, "\\" + ch)
    if table:
        s = s.replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return s


def _entities(value: Any) -> Any:
    """Table-artifact cells: numbers stay numbers, text is entity-escaped."""
    if value is None or isinstance(value, (int, float)):
        return value
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _table(t: C.Table) -> list[str]:
    if not t.rows:
        return ["(no rows)", ""]
    out = ["| " + " | ".join(md_escape(h, table=True) for h in t.headers) + " |",
           "|" + "---|" * len(t.headers)]
    out += ["| " + " | ".join(md_escape(v, table=True) for v in r) + " |" for r in t.rows]
    return out + [""]


def _block(b: Any, level: int = 3) -> list[str]:
    if isinstance(b, C.H3):
        return [f"{'#' * level} {md_escape(b.text)}" + (f" ({md_escape(b.pill)})" if b.pill else ""), ""]
    if isinstance(b, C.P):
        return [md_escape(b.text), ""]
    if isinstance(b, C.Table):
        return ([md_escape(b.caption), ""] if b.caption else []) + _table(b)
    if isinstance(b, C.Chart):
        return []  # charts live in the HTML report
    if isinstance(b, C.Pre):
        # a block quote of entity-escaped text: shown as text, never as markup, in every Markdown renderer
        return [md_escape(b.label), ""] + ["> " + md_escape(line) for line in (b.text or "").splitlines() or [""]] \
            + [""]
    if isinstance(b, C.Details):
        return [f"**{md_escape(b.summary)}**", ""] + [x for blk in b.blocks for x in _block(blk, level + 1)]
    raise TypeError(f"unknown report block {type(b).__name__}")


def render_markdown(con: duckdb.DuckDBPyConnection) -> str:
    return _markdown(*C.sections(con))


def _markdown(lede: str, secs: list) -> str:
    lines = ["# bench-audit report", "", md_escape(lede), ""]
    for s in secs:
        lines += [f"## {md_escape(s.title)}", ""]
        for b in s.blocks:
            lines += _block(b)
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(con: duckdb.DuckDBPyConnection, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(con), encoding="utf-8")
    return out


def report_artifacts(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What a flow publishes as Prefect artifacts: {"markdown": str, "tables": {key: [row dicts]}}.

    Keys are valid artifact keys (lower case, dashes). A flow does:
        art = report_artifacts(con)
        create_markdown_artifact(art["markdown"], key="bench-audit-report")
        for key, rows in art["tables"].items(): create_table_artifact(rows, key=key)
    """
    lede, secs = C.sections(con)
    tables: dict[str, list[dict[str, Any]]] = {}

    def walk(blocks: list) -> None:
        for b in blocks:
            if isinstance(b, C.Table) and b.key and b.rows:
                tables[b.key] = [{str(h): _entities(v) for h, v in zip(b.headers, r)} for r in b.rows]
            elif isinstance(b, C.Details):
                walk(b.blocks)

    for s in secs:
        walk(s.blocks)
    return {"markdown": _markdown(lede, secs), "tables": tables}


def publish_report_artifacts(con: duckdb.DuckDBPyConnection, *, report_path: str | None = None) -> list[str]:
    """Publish the report as artifacts of the current Prefect flow run; returns the artifact keys.

    Prefect is imported here only, so the library stays importable without it. Call from inside a flow or task.
    """
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    art = report_artifacts(con)
    md = art["markdown"] + (f"\nHTML report: `{md_escape(report_path)}`\n" if report_path else "")
    create_markdown_artifact(md, key="bench-audit-report", description="bench-audit report (Markdown)")
    for key, rows in art["tables"].items():
        create_table_artifact(rows, key=key, description=f"bench-audit report table {key}")
    return ["bench-audit-report", *art["tables"]]
