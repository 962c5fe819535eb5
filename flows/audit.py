"""Prefect flows: ingest -> classify -> rescore -> report. Orchestration only; the work lives in ``audit``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from audit import benchmarks as bench_registry
from audit.grading.classify import classify_catalog
from audit.ingest import ReadResult, read_target
from audit.report.html import write_report
from audit.analysis import derived_tables
from audit.scoring import DEFAULT_THRESHOLDS, parse_thresholds
from audit.sources import ReadContext
from audit.sources.manifest import resolve_sources
from catalog.writer import CatalogWriter

import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm


@task(retries=2, retry_delay_seconds=[1, 5], cache_policy=NONE, task_run_name="read {target}")
def read_source(target: str, ctx: ReadContext | None = None) -> ReadResult:
    return read_target(target, ctx)


@task(cache_policy=NONE)
def load_results(db: str, results: list[ReadResult], failures: list[tuple[str, str]], run_id: str) -> dict:
    with CatalogWriter(db) as w:
        for res in results:
            for batch in res.batches:
                w.load(batch, run_id)
        # A re-run replaces what earlier runs said about the same inputs.
        w.clear_failures([r.target for r in results] + [p for r in results for p in r.unrecognised]
                         + [t for t, _ in failures])
        for target, reason in failures:
            w.record_failure(target, reason, run_id)
        for res in results:
            for path in res.unrecognised:
                w.record_failure(path, "no adapter recognises this file (see `bench-audit sources`)", run_id)
        reg = bench_registry.known()
        w.refresh_dimensions(pa.table({
            "benchmark": [b.id for b in reg.values()],
            "name": [b.name for b in reg.values()],
            "n_choices": pa.array([b.n_choices for b in reg.values()], pa.int32()),
        }))
    return {
        "sources": sum(len(r.batches) for r in results),
        "read": sum(r.n_read for r in results),
        "accepted": sum(b.responses.num_rows for r in results for b in r.batches),
        "quarantined": sum(b.quarantine.num_rows for r in results for b in r.batches),
        "unrecognised": sum(len(r.unrecognised) for r in results),
        "failed": len(failures),
    }


@task(cache_policy=NONE)
def classify(db: str) -> int:
    with CatalogWriter(db) as w:
        schemes, evidence = classify_catalog(w.con)
        w.replace_table("grading_evidence", evidence)
        w.replace_table("grading_schemes", schemes)
    return schemes.num_rows


@task(cache_policy=NONE)
def rescore(db: str, thresholds: Sequence[float]) -> pa.Table:
    """Recompute every derived table (scores first); returns the scores."""
    with CatalogWriter(db) as w:
        tables = derived_tables(w.con, thresholds)
        for name, table in tables.items():
            w.replace_table(name, table)
    return tables["scores"]


@task(cache_policy=NONE)
def render_report(db: str, out: str) -> str:
    with CatalogWriter(db) as w:
        return str(write_report(w.con, out))


def _publish(summary: dict, scores: pa.Table, report: str | None) -> None:
    lines = ["# bench-audit run", "", "| what | count |", "|---|---|"]
    lines += [f"| {k} | {v:,} |" for k, v in summary.items()]
    if report:
        lines += ["", f"HTML report: `{report}`"]
    create_markdown_artifact("\n".join(lines), key="bench-audit-summary", description="bench-audit run summary")
    top = scores.filter(pc.equal(scores["rank"], 1)) if scores.num_rows else scores
    rows = top.select(["benchmark", "grader", "threshold", "model", "score"]).to_pylist()
    if rows:
        create_table_artifact(rows, key="bench-audit-leaders", description="Leader per benchmark and threshold")


def _ingest(sources: list[str], db: str, mirror: str | None, run_id: str, read, load, log) -> dict:
    targets = resolve_sources(sources, mirror)
    results, failures = [], []
    for t in tqdm(targets, desc="reading sources", unit="source", disable=None):
        if t.error:
            log.warning("source %s unavailable: %s", t.label, t.error)
            failures.append((t.label, t.error))
            continue
        try:
            results.append(read(t.path, t.context))
        except Exception as e:  # an unreadable source is reported, never fatal to the others
            log.warning("could not read %s: %s", t.label, e)
            failures.append((t.label, f"{type(e).__name__}: {e}"))
    return load(db, results, failures, run_id)


@flow(name="ingest", log_prints=True)
def ingest_flow(sources: list[str], db: str, mirror: str | None = None, run_id: str = "adhoc") -> dict:
    return _ingest(sources, db, mirror, run_id, read_source, load_results, get_run_logger())


def ingest_sources(sources: list[str], db: str, mirror: str | None = None) -> dict:
    """The ingest flow's work without the Prefect engine (for `bench-audit ingest`: no API to start)."""
    with CatalogWriter(db) as w:
        run_id = w.start_run("ingest", {"sources": sources, "mirror": mirror})
    status = "failed"
    try:
        out = _ingest(sources, db, mirror, run_id, read_source.fn, load_results.fn, logging.getLogger("bench-audit"))
        status = "completed"
        return out
    finally:
        with CatalogWriter(db) as w:
            w.finish_run(run_id, status)


@flow(name="audit", log_prints=True)
def audit_flow(sources: list[str] | None = None, db: str = "bench-audit.duckdb",
               report: str | None = "bench-audit-report.html",
               thresholds: list[float] = list(DEFAULT_THRESHOLDS), mirror: str | None = None) -> dict:
    """The whole audit: ingest the sources (the manifest's defaults when none are given), classify every
    grader, re-score at each confidence target, and write the report."""
    thresholds = parse_thresholds(thresholds)
    with CatalogWriter(db) as w:
        run_id = w.start_run("audit", {"sources": sources, "thresholds": thresholds, "mirror": mirror})
    status = "failed"
    try:
        summary = ingest_flow(sources or [], db, mirror, run_id)
        summary["grading_units"] = classify(db)
        scores = rescore(db, thresholds)
        summary["score_rows"] = scores.num_rows
        out = render_report(db, report) if report else None
        _publish(summary, scores, out)
        status = "completed"
        return {**summary, "run_id": run_id, "report": out, "db": str(Path(db))}
    finally:
        with CatalogWriter(db) as w:
            w.finish_run(run_id, status)
