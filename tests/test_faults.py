"""Faults: a writer killed with SIGKILL mid-load leaves a usable catalog; `bench-audit query` cannot write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from audit.cli import main
from catalog.writer import CatalogWriter, connect_reader

REPO = Path(__file__).resolve().parents[1]
ROWS = 150_000

# A real writer process: loads one 150k-row source per iteration, forever, saying when each load starts and ends.
WRITER = textwrap.dedent(f"""
    import sys
    import pyarrow as pa
    from audit.records import RESPONSE_SCHEMA, QUARANTINE_SCHEMA, Provenance, SourceBatch
    from catalog.writer import CatalogWriter

    n = {ROWS}
    cols = {{f.name: pa.nulls(n, f.type) for f in RESPONSE_SCHEMA}}
    cols.update(benchmark=pa.array(["b"] * n), grader=pa.array(["g"] * n), model=pa.array(["m"] * n),
                sample_id=pa.array([str(i) for i in range(n)]), outcome=pa.array(["correct", "wrong"] * (n // 2)),
                response=pa.array(["some model output " * 4] * n))
    base = pa.table(cols)
    q = pa.table({{"source_id": ["x"], "locator": ["f:1"], "raw": ["{{"], "reason": ["invalid JSON"],
                  "ingest_run_id": [None]}}, schema=QUARANTINE_SCHEMA)
    with CatalogWriter(sys.argv[1]) as w:
        i = 0
        while True:
            sid = f"s{{i:04d}}"
            t = base.set_column(0, RESPONSE_SCHEMA.field(0), pa.array([sid] * n))
            qq = q.set_column(0, QUARANTINE_SCHEMA.field(0), pa.array([sid]))
            batch = SourceBatch(Provenance(sid, "synthetic", "file:///x", "0" * 64, n_read=n + 1), t, qq)
            print("begin", i, flush=True)
            w.load(batch, "run")
            print("committed", i, flush=True)
            i += 1
""")


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15])
def test_sigkill_during_a_catalog_write_leaves_a_committed_state(tmp_path, delay):
    db = tmp_path / "c.duckdb"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    committed = -1
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            assert line, f"writer died early: {p.stderr.read()}"
            kind, i = line.split()
            if kind == "committed":
                committed = int(i)
            elif kind == "begin" and int(i) >= 3:
                time.sleep(delay)  # inside (or just around) the transaction of load number i
                break
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == -signal.SIGKILL
    assert committed >= 2

    # Reopen: DuckDB replays its write-ahead log; the catalog holds every committed load, whole, and no partial one.
    with CatalogWriter(db) as w:
        n_sources = w.con.sql("SELECT count(*) FROM sources").fetchall()[0][0]
        assert n_sources in (committed + 1, committed + 2)  # the killed load either committed entirely or not at all
        rec = w.con.sql("SELECT source_id, n_read, rows_in_responses, rows_in_quarantine "
                        "FROM source_reconciliation").fetchall()
        assert all(rr == ROWS and rq == 1 and n == ROWS + 1 for _, n, rr, rq in rec)
        total = w.con.sql("SELECT count(*), count(DISTINCT source_id) FROM responses").fetchall()[0]
        assert total == (ROWS * n_sources, n_sources)  # no orphan rows from the interrupted transaction
        # and it is writable again
        w.con.execute("DELETE FROM responses WHERE source_id = 's0000'")
    con = connect_reader(db)
    assert con.sql("SELECT count(*) FROM responses").fetchall()[0][0] == ROWS * (n_sources - 1)
    con.close()


@pytest.fixture
def catalog(tmp_path) -> Path:
    db = tmp_path / "c.duckdb"
    with CatalogWriter(db) as w:
        w.start_run("test")
    return db


@pytest.mark.parametrize("sql", [
    "INSERT INTO runs VALUES ('x', 'evil', NULL, now(), NULL, 'running')",
    "UPDATE runs SET status = 'evil'",
    "DELETE FROM runs",
    "CREATE TABLE evil (x INT)",
    "DROP TABLE runs",
    "COPY runs TO '{out}'",
    "COPY (SELECT 1) TO '{out}' (FORMAT csv)",
    "ATTACH '{out}' AS evil",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SET enable_external_access = true",
    "INSTALL httpfs",
    "SELECT 1; DELETE FROM runs",
])
def test_query_cannot_write_or_reach_files(catalog, tmp_path, capsys, sql):
    out = tmp_path / "exfiltrated.out"
    before = catalog.read_bytes()
    code = main(["query", sql.format(out=out), "--db", str(catalog)])
    err = capsys.readouterr().err
    assert code == 2 and "error" in err
    assert not out.exists()
    assert catalog.read_bytes() == before
    con = connect_reader(catalog)
    assert con.sql("SELECT command, status FROM runs").fetchall() == [("test", "running")]
    con.close()


def test_query_still_reads(catalog, capsys):
    assert main(["query", "SELECT command FROM runs", "--db", str(catalog), "--format", "csv"]) == 0
    assert capsys.readouterr().out == "command\ntest\n"
