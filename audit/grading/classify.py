"""Gather every kind of evidence for every (benchmark, grader) unit and classify them, as Arrow tables."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Callable, Iterable

import duckdb
import pyarrow as pa

from audit.grading.combine import classify_all
from audit.grading.curated import curated_evidence
from audit.grading.empirical import empirical_evidence
from audit.grading.taxonomy import Classification, Evidence

# Further evidence providers (static harness catalogs, probes) plug in here: each takes the catalog connection
# and the observed units and returns Evidence.
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
