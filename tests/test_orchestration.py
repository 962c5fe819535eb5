"""Orchestration on the real published outputs: fan-out on threads vs a local Dask cluster, incremental re-runs,
crash (kill -9) and resume, and the catalog lock. Runs go through `bench-audit run` and the real Prefect engine."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from audit.cli import main
from catalog.lock import CatalogLock, lock_path
from catalog.writer import CatalogLocked

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("mmlu_pro_tiger", "truthfulqa_multi")
# Columns that name a run or a moment: they differ between two runs of the same audit by design.
VOLATILE = {"ingest_run_id", "run_id", "ingested_at", "loaded_at", "classified_at", "failed_at"}


def catalog_contents(db: Path) -> dict[str, list[tuple]]:
    """Every table's rows (sorted), without run ids and timestamps; the `runs` log itself is left out."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        tables = [t for (t,) in con.sql("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        for t in tables:
            if t in ("runs", "schema_migrations"):
                continue
            cols = [c for c, typ in con.sql(f"SELECT column_name, data_type FROM duckdb_columns() "
                                            f"WHERE table_name = '{t}' ORDER BY column_index").fetchall()
                    if c not in VOLATILE and not typ.startswith("TIMESTAMP")]
            rows = con.sql(f"SELECT {', '.join(chr(34) + c + chr(34) for c in cols)} FROM \"{t}\"").fetchall()
            out[t] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def _runs(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql("SELECT run_id, status FROM runs ORDER BY started_at").fetchall()
    finally:
        con.close()


def _run(args: list[str], capsys) -> str:
    capsys.readouterr()
    assert main(["run", *args]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def inputs(shared_data) -> list[str]:
    return [str(shared_data / s) for s in SOURCES]


@pytest.fixture(scope="module")
def threaded(inputs, tmp_path_factory):
    """The reference: the audit on the default thread runner, run once."""
    tmp = tmp_path_factory.mktemp("threads")
    db = tmp / "a.duckdb"
    assert main(["run", *inputs, "--db", str(db), "--report", str(tmp / "a.html")]) == 0
    return db


def test_threaded_run_fills_the_catalog(threaded):
    got = catalog_contents(threaded)
    assert len(got["responses"]) == 4 * 308 + 3 * 100 + 300  # + the TruthfulQA human labels
    assert len(got["ingest_units"]) == 8  # one unit per (source, model) file, and the human-label CSV
    assert {r[0] for r in got["scores"]} == {"mmlu_pro", "truthfulqa_gen"}
    assert not (threaded.parent / "a.duckdb.staging").exists()  # staged shards are cleaned up once loaded
    assert not lock_path(threaded).exists()


def test_second_run_ingests_nothing_and_says_so(threaded, inputs, capsys):
    before = catalog_contents(threaded)
    out = _run([*inputs, "--db", str(threaded), "--report", str(threaded.parent / "b.html")], capsys)
    assert "sources: 0  records read: 0" in out
    assert "8 sources unchanged, skipped" in out
    assert catalog_contents(threaded) == before
    # the unchanged sources still carry the run that loaded them
    con = duckdb.connect(str(threaded), read_only=True)
    (first_run,) = con.sql("SELECT DISTINCT ingest_run_id FROM sources").fetchall()
    con.close()
    assert first_run[0] == _runs(threaded)[0][0]


def test_dask_cluster_gives_the_same_catalog(threaded, inputs, tmp_path, capsys):
    db = tmp_path / "dask.duckdb"
    out = _run([*inputs, "--db", str(db), "--report", str(tmp_path / "d.html"), "--task-runner", "dask",
                "--dask-workers", "2"], capsys)
    assert "sources: 8" in out
    con = duckdb.connect(str(db), read_only=True)
    params = json.loads(con.sql("SELECT params FROM runs").fetchall()[0][0])
    con.close()
    assert params["task_runner"] == "local dask cluster, 2 process workers"
    assert catalog_contents(db) == catalog_contents(threaded)


def test_changed_source_alone_is_read_again(shared_data, tmp_path, capsys):
    src = tmp_path / "mmlu"
    shutil.copytree(shared_data / "mmlu_pro_tiger", src)
    db = tmp_path / "c.duckdb"
    args = [str(src), "--db", str(db), "--report", str(tmp_path / "c.html")]
    _run(args, capsys)
    f = src / "model_outputs_Meta-Llama-3-70B_5shots.json"
    records = json.loads(f.read_text())
    f.write_text(json.dumps(records[:-10]))
    out = _run(args, capsys)
    assert "sources: 1  records read: 298" in out and "3 sources unchanged, skipped" in out
    con = duckdb.connect(str(db), read_only=True)
    n = dict(con.sql("SELECT model, count(*) FROM responses GROUP BY 1").fetchall())
    con.close()
    assert n["Meta-Llama-3-70B"] == 298 and sum(n.values()) == 3 * 308 + 298
    f.unlink()  # a file deleted upstream: its rows leave the catalog
    out = _run(args, capsys)
    assert "3 sources unchanged, skipped" in out and "1 source(s) removed" in out
    con = duckdb.connect(str(db), read_only=True)
    assert con.sql("SELECT count(*), count(DISTINCT model) FROM responses").fetchall() == [(3 * 308, 3)]
    con.close()
    out = _run([*args, "--full-refresh"], capsys)
    assert "sources: 3  records read: 924" in out and "unchanged" not in out


def _kill_at(args: list[str], marker: str, timeout: float, env: dict) -> int:
    """Run `bench-audit <args>` and kill -9 it when it prints a line holding ``marker``; returns its pid.
    It runs in its own session, so the ephemeral Prefect API server `run` starts (orphaned by kill -9) goes too."""
    proc = subprocess.Popen([sys.executable, "-m", "audit.cli", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            seen.append(line)
            if marker in line:
                os.kill(proc.pid, signal.SIGKILL)
                break
            assert time.monotonic() < deadline, "".join(seen[-20:])
    finally:
        proc.kill()
        proc.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])
    return proc.pid


def test_kill_mid_write_then_rerun_equals_uninterrupted(threaded, inputs, tmp_path, capsys):
    db = tmp_path / "k.duckdb"
    # one unit per load transaction (the default would load these 8 small units in one)
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
           "PREFECT_HOME": str(tmp_path / "prefect"), "BENCH_AUDIT_LOAD_GROUP_ROWS": "1"}
    # "loaded unit 1/8": the writer has committed one unit (rows and record together) and is loading the others
    pid = _kill_at(["run", *inputs, "--db", str(db), "--report", str(tmp_path / "k.html")], "loaded unit 1/8", 150,
                   env)
    assert [status for _, status in _runs(db)] == ["running"]  # the killed run never finished
    con = duckdb.connect(str(db), read_only=True)
    committed = con.sql("SELECT count(*) FROM ingest_units").fetchall()[0][0]
    con.close()
    assert 1 <= committed < 8, f"the kill was meant to land while the writer loads: {committed} of 8 units in"
    stale = json.loads(lock_path(db).read_text())
    assert stale["pid"] == pid and stale["host"] == socket.gethostname()

    out = _run([*inputs, "--db", str(db), "--report", str(tmp_path / "k.html")], capsys)
    assert f"{committed} sources unchanged, skipped" in out  # what was committed is not read again
    assert f"{8 - committed} unit(s) staged by an interrupted run reused" in out  # staged shards resume
    assert catalog_contents(db) == catalog_contents(threaded)
    assert [status for _, status in _runs(db)] == ["interrupted", "completed"]
    assert not lock_path(db).exists()


def test_thread_runner_is_bounded_by_default(monkeypatch):
    """Prefect's ThreadPoolTaskRunner starts every submitted task at once unless told otherwise: a 4,500-model
    corpus would be read into memory whole. Unset, the runner gets the read threads; an explicit value wins."""
    from flows.runners import RunnerSpec

    monkeypatch.delenv("BENCH_AUDIT_MAX_WORKERS", raising=False)
    monkeypatch.setenv("BENCH_AUDIT_READ_THREADS", "3")
    spec = RunnerSpec.resolve()
    assert spec.max_workers == 3 and spec.parallel == 3 and spec.build()._max_workers == 3
    assert spec.describe() == "threads (max 3)"
    assert RunnerSpec.resolve(max_workers=5).build()._max_workers == 5
    monkeypatch.setenv("BENCH_AUDIT_MAX_WORKERS", "7")
    assert RunnerSpec.resolve().max_workers == 7
    assert RunnerSpec.resolve("dask", dask_workers=3).parallel == 3


# -- the lock ------------------------------------------------------------------------------------------------
def test_second_writer_is_refused_with_who_holds_it(tmp_path):
    db = tmp_path / "l.duckdb"
    with CatalogLock(db, purpose="audit", run="r1"):
        with pytest.raises(CatalogLocked) as e:
            CatalogLock(db).acquire()
    msg = str(e.value)
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in msg and "audit r1" in msg
    assert not lock_path(db).exists()


def test_run_refused_while_another_holds_the_catalog(tmp_path, capsys, inputs):
    db = tmp_path / "l.duckdb"
    with CatalogLock(db, purpose="audit"):
        rc = main(["run", inputs[0], "--db", str(db), "--report", str(tmp_path / "l.html")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "is being written by audit" in err and f"pid {os.getpid()}" in err
    assert not db.exists() or _runs(db) == []


def test_stale_lock_of_dead_process_is_taken_over(tmp_path):
    db = tmp_path / "s.duckdb"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(db).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": time.time(),
                                         "purpose": "audit"}))
    with CatalogLock(db) as lock:
        assert lock.took_over["pid"] == dead.pid
        assert json.loads(lock_path(db).read_text())["pid"] == os.getpid()


def test_reused_pid_does_not_keep_a_lock(tmp_path):
    db = tmp_path / "p.duckdb"
    # our own pid, but the lock is older than this process: the pid was reused, the holder is gone
    lock_path(db).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": 1000.0}))
    with CatalogLock(db) as lock:
        assert lock.took_over["started"] == 1000.0


def test_lock_from_another_host_is_respected(tmp_path):
    db = tmp_path / "h.duckdb"
    lock_path(db).write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "started": time.time()}))
    with pytest.raises(CatalogLocked, match=f"delete {lock_path(db)}"):
        CatalogLock(db, wait=0.2, poll=0.05).acquire()
    assert lock_path(db).exists()


def test_ingest_command_is_incremental_and_sees_side_files(shared_data, tmp_path, capsys):
    """`bench-audit ingest` (no Prefect engine) shares the incremental logic; a new file beside the units (gold
    answers, summaries: what an adapter may read besides its unit) makes every unit be read again."""
    src = tmp_path / "mmlu"
    shutil.copytree(shared_data / "mmlu_pro_tiger", src)
    db = tmp_path / "i.duckdb"

    def ingest(*extra: str) -> str:
        capsys.readouterr()
        assert main(["ingest", str(src), "--db", str(db), *extra]) == 0
        return capsys.readouterr().out

    assert "sources: 4  records read: 1,232" in ingest()
    assert "4 sources unchanged, skipped" in ingest()
    (src / "notes").mkdir()
    (src / "notes" / "README.md").write_text("side file\n")
    out = ingest()
    assert "sources: 4" in out and "unchanged" not in out
    assert "sources: 4" in ingest("--full-refresh")
    con = duckdb.connect(str(db), read_only=True)
    assert con.sql("SELECT count(*) FROM responses").fetchall() == [(1232,)]
    assert con.sql("SELECT command, status FROM runs").fetchall() == [("ingest", "completed")] * 4
    con.close()


def test_ingest_killed_mid_load_then_rerun_equals_uninterrupted(inputs, tmp_path, capsys):
    """`bench-audit ingest` loads units as their reads come in, from memory (nothing is staged on disk): after a
    kill -9 mid-load, the units whose transaction committed are in with their records and the others not at all;
    the next run reads exactly the others and ends with the catalog an uninterrupted ingest gives."""
    whole = tmp_path / "whole.duckdb"
    assert main(["ingest", *inputs, "--db", str(whole)]) == 0
    db = tmp_path / "k.duckdb"
    # "loaded unit 1:": the first unit's transaction (its rows and its record) is committed, the others' are not
    _kill_at(["ingest", *inputs, "--db", str(db)], "loaded unit 1:", 120,
             {**os.environ, "PYTHONUNBUFFERED": "1", "BENCH_AUDIT_LOAD_GROUP_ROWS": "1"})
    con = duckdb.connect(str(db), read_only=True)
    committed = con.sql("SELECT count(*) FROM ingest_units").fetchall()[0][0]
    loaded = con.sql("SELECT count(*) FROM sources").fetchall()[0][0]
    con.close()
    assert 1 <= committed < 8, f"the kill was meant to land while the writer loads: {committed} of 8 units in"
    assert loaded == committed  # every unit here is one source: a unit's rows and its record commit together
    assert not Path(f"{db}.staging").exists()  # the engine-free ingest stages nothing on disk

    capsys.readouterr()
    assert main(["ingest", *inputs, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"{committed} sources unchanged, skipped" in out and f"sources: {8 - committed} " in out
    assert catalog_contents(db) == catalog_contents(whole)
    assert [status for _, status in _runs(db)] == ["interrupted", "completed"]


def test_ingest_flow_under_prefect_equals_the_engine_free_ingest(inputs, tmp_path):
    """The `ingest` flow (grouped read tasks on Prefect's runner, parquet staging) and `bench-audit ingest` (a
    pool handing units to the writer in memory) load the same catalog; neither leaves staging behind."""
    from flows.audit import ingest_flow

    free, flowed = tmp_path / "free.duckdb", tmp_path / "flow.duckdb"
    assert main(["ingest", *inputs, "--db", str(free)]) == 0
    summary = ingest_flow(inputs, str(flowed))
    assert summary["read"] == 4 * 308 + 3 * 100 + 300 and summary["units_read"] == 8
    a, b = catalog_contents(free), catalog_contents(flowed)  # run ids and times left out
    assert a == b
    assert len(a["responses"]) == 4 * 308 + 3 * 100 + 300
    assert not Path(f"{free}.staging").exists() and not Path(f"{flowed}.staging").exists()


def test_waiting_run_gets_the_lock_when_the_holder_finishes(tmp_path):
    import threading

    db = tmp_path / "w.duckdb"
    holder = CatalogLock(db, purpose="report").acquire()
    threading.Timer(0.3, holder.release).start()
    start = time.monotonic()
    with CatalogLock(db, wait=30, poll=0.05) as lock:
        assert lock.took_over is None and time.monotonic() - start >= 0.25
