"""Run `bench-audit ingest` in-process and read back what the catalog says per source (for the adapter tests)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from audit.cli import main


def ingest(db: Path, *targets: Path) -> dict[str, dict]:
    """`bench-audit ingest TARGET ... --db DB`; returns {source_id: sources row} (n_read, n_accepted, ...)."""
    assert main(["ingest", *map(str, targets), "--db", str(db)]) == 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        cols = ["source_id", "format", "uri", "sha256", "revision", "license", "n_read", "n_accepted", "n_quarantined"]
        rows = con.sql(f"select {', '.join(cols)} from sources order by source_id").fetchall()
        out = {r[0]: dict(zip(cols, r)) for r in rows}
        counts = dict(con.sql("select source_id, count(*) from responses group by 1").fetchall())
        quarantined = dict(con.sql("select source_id, count(*) from quarantine group by 1").fetchall())
        failures = con.sql("select target from source_failures").fetchall()
    finally:
        con.close()
    for sid, row in out.items():  # what the tables hold agrees with what the sources row claims
        assert counts.get(sid, 0) == row["n_accepted"] and quarantined.get(sid, 0) == row["n_quarantined"], sid
    assert not failures, f"unrecognised or failed inputs: {failures}"
    return out


def query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def jsonl_records(path: Path) -> list[dict]:
    """Records of a JSONL file, counted independently of the adapters (non-blank lines)."""
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def nonblank_lines(path: Path) -> int:
    return sum(1 for line in path.read_bytes().splitlines() if line.strip())
