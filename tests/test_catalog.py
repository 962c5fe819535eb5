import duckdb
import pyarrow as pa
import pytest

from audit.records import Provenance, RecordBuilder
from catalog.writer import SCHEMA_VERSION, CatalogLocked, CatalogWriter, connect_reader


def _batch(sid="src", n=3, bad=0, sha="a" * 64):
    b = RecordBuilder(sid, benchmark="gpqa", grader="g", model="m")
    for i in range(n):
        b.add(sample_id=i, response=f"r{i}", outcome="correct" if i % 2 == 0 else "wrong", original_score=i % 2 == 0)
    for i in range(bad):
        b.reject(f"f:{n + i}", "{", "invalid JSON")
    return b.finish(Provenance(sid, "test", "file:///f", sha))


def test_migrations_are_applied_once(db):
    with CatalogWriter(db) as w:
        v = w.con.sql("SELECT max(version) FROM schema_migrations").fetchall()[0][0]
    with CatalogWriter(db) as w:  # reopening applies nothing twice
        assert w.con.sql("SELECT count(*) FROM schema_migrations").fetchall()[0][0] == len(
            w.con.sql("SELECT * FROM schema_migrations").fetchall())
    assert v == SCHEMA_VERSION
    tables = {r[0] for r in duckdb.connect(str(db), read_only=True).sql("SHOW TABLES").fetchall()}
    assert {"sources", "benchmarks", "grading_schemes", "models", "responses", "scores", "quarantine", "runs"} <= tables


def test_reloading_a_source_replaces_it(db):
    with CatalogWriter(db) as w:
        w.load(_batch(n=5, bad=2))
        w.load(_batch(n=3, bad=1))
        w.load(_batch("other", n=2))
        rows = w.con.sql("SELECT * FROM source_reconciliation ORDER BY source_id").fetchall()
    assert rows == [("other", "test", 2, 2, 0, 2, 0), ("src", "test", 4, 3, 1, 3, 1)]


def test_failed_load_leaves_the_previous_state(db):
    with CatalogWriter(db) as w:
        w.load(_batch(n=4))
        bad = _batch(n=2)
        bad.responses = bad.responses.set_column(
            bad.responses.schema.get_field_index("outcome"), "outcome", pa.array([None, None], pa.string()))
        with pytest.raises(duckdb.Error):
            w.load(bad)  # NOT NULL outcome: the whole transaction rolls back
        assert w.con.sql("SELECT count(*) FROM responses").fetchall()[0][0] == 4


@pytest.mark.parametrize("sql", [
    "INSERT INTO models VALUES ('x')", "DELETE FROM responses", "CREATE TABLE t (x INT)",
    "COPY responses TO '/tmp/bench-audit-should-not-exist.csv'", "ATTACH '/tmp/x.duckdb' AS x",
    "SET enable_external_access = true",
])
def test_reader_cannot_write(db, sql):
    with CatalogWriter(db) as w:
        w.load(_batch())
    con = connect_reader(db)
    with pytest.raises(duckdb.Error):
        con.execute(sql)


def test_second_writer_gets_a_clear_error(db, tmp_path):
    import subprocess, sys, textwrap
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, time; c = duckdb.connect({str(db)!r}); print('ready', flush=True); time.sleep(30)""")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(CatalogLocked, match="another process"):
            CatalogWriter(db)
    finally:
        holder.kill()
        holder.wait()
