"""Gather every kind of evidence for every (benchmark, grader) unit and classify them, as Arrow tables.

``classify_tables`` is the full classifier: curated + empirical evidence for the audited units, plus (when the
harness catalogs are given) static evidence from the lm-eval / HELM wheels, the probes of real graders, and the
whole catalogs as ``harness_tasks`` rows for the census. ``store_classification`` writes all of it through the
catalog writer. ``classify_catalog`` (curated + empirical + providers) is kept for callers that want two tables.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable

import duckdb
import pyarrow as pa

from audit.grading.combine import classify_all
from audit.grading.curated import curated_evidence
from audit.grading.empirical import empirical_evidence
from audit.grading.taxonomy import Classification, Evidence

# Further evidence providers (static harness catalogs, probes) plug in here: each takes the catalog connection
# and the observed units and returns Evidence. For type checkers only (annotations here are strings): a runtime
# typing alias over a DuckDB type sits in typing's caches until interpreter exit, past DuckDB's own teardown, and
# nanobind then printed ~40 "leaked type/function" lines after every `bench-audit run`.
if TYPE_CHECKING:
    EvidenceProvider = Callable[[duckdb.DuckDBPyConnection, list[tuple[str, str]]], list[Evidence]]


def observed_units(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return [tuple(r) for r in con.sql("SELECT DISTINCT benchmark, grader FROM responses ORDER BY 1, 2").fetchall()]


def gather_evidence(con: duckdb.DuckDBPyConnection, providers: Iterable[EvidenceProvider] = ()) -> list[Evidence]:
    units = observed_units(con)
    evidence = curated_evidence(units) + empirical_evidence(con)
    for provide in providers:
        evidence += provide(con, units)
    return evidence


EVIDENCE_SCHEMA = pa.schema([
    ("benchmark", pa.string()), ("grader", pa.string()), ("kind", pa.string()), ("scheme", pa.string()),
    ("idk_credit", pa.string()), ("wrong_penalty", pa.string()), ("grader_kind", pa.string()),
    ("score_correct", pa.float64()), ("score_abstain", pa.float64()), ("score_wrong", pa.float64()),
    ("detail", pa.string()), ("citation", pa.string()),
])


def evidence_table(evidence: list[Evidence]) -> pa.Table:
    rows = [{k: v for k, v in asdict(e).items() if k in EVIDENCE_SCHEMA.names} for e in evidence]
    return pa.Table.from_pylist(rows, schema=EVIDENCE_SCHEMA)


def classification_table(classes: list[Classification]) -> pa.Table:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = []
    for c in classes:
        d = asdict(c)
        d["conflicts"] = json.dumps(d["conflicts"]) if d["conflicts"] else None
        d["classified_at"] = now
        rows.append(d)
    schema = pa.schema([
        ("benchmark", pa.string()), ("grader", pa.string()), ("scheme", pa.string()), ("idk_credit", pa.string()),
        ("wrong_penalty", pa.string()), ("grader_kind", pa.string()), ("binary_grading", pa.bool_()),
        ("implied_t", pa.float64()), ("rewards_guessing", pa.bool_()), ("evidence_kinds", pa.list_(pa.string())),
        ("conflicts", pa.string()), ("classified_at", pa.timestamp("us")),
    ])
    return pa.Table.from_pylist(rows, schema=schema)


def classify_catalog(con: duckdb.DuckDBPyConnection,
                     providers: Iterable[EvidenceProvider] = ()) -> tuple[pa.Table, pa.Table]:
    """(grading_schemes rows, grading_evidence rows) for the reference units and every observed unit."""
    evidence = gather_evidence(con, providers)
    return classification_table(classify_all(evidence)), evidence_table(evidence)


# -- the full classifier, with the harness catalogs ------------------------------------------------------------------
@dataclass
class HarnessCatalogs:
    """The harness catalogs read from their wheels, the probes run on lm-eval graders, and what was unavailable."""

    tasks: pa.Table
    parse_errors: pa.Table
    probes: pa.Table
    probe_evidence: list[Evidence] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def load_harness_catalogs(lm_eval_wheel: str | os.PathLike | None = None,
                          helm_wheel: str | os.PathLike | None = None, *, download: bool = True,
                          probes: bool = True) -> HarnessCatalogs:
    """Read lm-eval's and HELM's catalogs (wheel file or folder: argument, BENCH_AUDIT_*_WHEEL, user cache, or
    `pip download`). A harness that cannot be had is noted, not fatal."""
    from audit.grading import static, wheels
    from audit.grading.probes import PROBES_SCHEMA, run_probes

    tasks, errors = [], []
    notes: list[str] = []
    counts: dict[str, Any] = {}
    probe_table, probe_evidence = PROBES_SCHEMA.empty_table(), []
    try:
        version = wheels.version_of("lm_eval")
        archive = wheels.Archive.open(wheels.locate("lm_eval", lm_eval_wheel, download=download))
        cat = static.LmEvalCatalog(archive, version)
        rows, errs, counts["lm_eval"] = cat.entries()
        tasks.append(pa.Table.from_pylist(rows, schema=static.HARNESS_TASKS_SCHEMA))
        errors.append(pa.Table.from_pylist(errs, schema=static.PARSE_ERRORS_SCHEMA))
        if probes:
            result = run_probes(cat)
            probe_table, probe_evidence = result.table(), result.evidence
    except wheels.WheelUnavailable as e:
        notes.append(f"lm-eval catalog not read: {e}")
    try:
        archive = wheels.Archive.open(wheels.locate("helm", helm_wheel, download=download))
        t, e2 = static.helm_run_groups(archive, wheels.version_of("helm"))
        tasks.append(t)
        errors.append(e2)
        counts["helm"] = {"run_group": t.num_rows}
    except wheels.WheelUnavailable as e:
        notes.append(f"HELM catalog not read: {e}")
    return HarnessCatalogs(
        tasks=pa.concat_tables(tasks) if tasks else static.HARNESS_TASKS_SCHEMA.empty_table(),
        parse_errors=pa.concat_tables(errors) if errors else static.PARSE_ERRORS_SCHEMA.empty_table(),
        probes=probe_table, probe_evidence=probe_evidence, counts=counts, notes=notes)


def classify_tables(con: duckdb.DuckDBPyConnection, harness: HarnessCatalogs | None = None,
                    providers: Iterable[EvidenceProvider] = ()) -> dict[str, pa.Table]:
    """Every table the classifier owns, keyed by catalog table name."""
    from audit.grading.static import static_evidence

    units = observed_units(con)
    extra: list[Evidence] = []
    if harness is not None:
        from audit.grading.curated import implementation_units

        extra_units = {(e.benchmark, e.grader) for e in harness.probe_evidence} | set(implementation_units())
        units = units + sorted(extra_units - set(units))
        extra = static_evidence(harness.tasks, units) + harness.probe_evidence
    evidence = curated_evidence(units) + empirical_evidence(con) + extra
    for provide in providers:
        evidence += provide(con, units)
    out = {"grading_schemes": classification_table(classify_all(evidence)),
           "grading_evidence": evidence_table(evidence)}
    if harness is not None:
        out.update(harness_tasks=harness.tasks, harness_parse_errors=harness.parse_errors,
                   grading_probes=harness.probes)
    return out


def store_classification(writer: Any, harness: HarnessCatalogs | None = None,
                         providers: Iterable[EvidenceProvider] = ()) -> dict[str, pa.Table]:
    """Classify and write every classifier table through the catalog writer (one replace per table)."""
    tables = classify_tables(writer.con, harness, providers)
    for name, table in tables.items():
        writer.replace_table(name, table)
    return tables
