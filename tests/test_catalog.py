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


def _unit(key, sids):
    return {"unit_key": key, "target": "t", "path": f"/in/{key}", "adapter": "test", "sha256": "s" * 64,
            "fingerprint": f"fp-{'-'.join(sids)}", "source_ids": list(sids)}


def test_unit_records_commit_with_their_rows_or_not_at_all(db):
    """A unit's record (ingest_units) is written in the transaction that loads its sources: a failed load leaves
    neither, so a unit is never recorded without its rows (the next run would skip it) nor the reverse."""
    from catalog.units import known_units, record_units

    with CatalogWriter(db) as w:
        w.load_many([_batch("a"), _batch("b", n=2), _batch("c")], "r1",
                    then=lambda con: record_units(con, [_unit("u1", ["a", "b"]), _unit("u2", ["c"])], "r1"))
        assert known_units(w) == {"u1": ("fp-a-b", 2), "u2": ("fp-c", 1)}
        # u1 now yields only "a": "b" is dropped with it, in the same transaction; u2 is untouched
        w.load_many([_batch("a", n=4)], "r2", then=lambda con: record_units(con, [_unit("u1", ["a"])], "r2"))
        assert known_units(w) == {"u1": ("fp-a", 1), "u2": ("fp-c", 1)}
        assert w.con.sql("SELECT source_id, count(*) FROM responses GROUP BY 1 ORDER BY 1").fetchall() == [
            ("a", 4), ("c", 3)]
        assert w.con.sql("SELECT run_id FROM ingest_units WHERE unit_key = 'u1'").fetchall() == [("r2",)]

        def fail(con):
            record_units(con, [_unit("u3", ["d"])], "r3")
            raise RuntimeError("killed mid-load")
        with pytest.raises(RuntimeError):
            w.load_many([_batch("d")], "r3", then=fail)
        assert known_units(w) == {"u1": ("fp-a", 1), "u2": ("fp-c", 1)}
        assert w.con.sql("SELECT count(*) FROM responses WHERE source_id = 'd'").fetchall() == [(0,)]
        # a unit that produced no source is still recorded, in a transaction of its own
        w.load_many([], "r4", then=lambda con: record_units(con, [_unit("u4", [])], "r4"))
        assert w.con.sql("SELECT len(source_ids) FROM ingest_units WHERE unit_key = 'u4'").fetchall() == [(0,)]


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
