"""The deployments in prefect.yaml on a real Prefect server and process worker on 127.0.0.1 (random free port,
private PREFECT_HOME), driven by scripts/local_prefect.py: deploy, trigger the nightly audit with overridden
parameters, and find the catalog filled. Slow (~1 min: server start, CLI calls), but part of the normal suite."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("local_prefect", REPO / "scripts" / "local_prefect.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_nightly_audit_deployment_runs_on_a_real_server_and_worker(shared_data, tmp_path):
    lp_mod = _script()
    db, report = tmp_path / "nightly.duckdb", tmp_path / "nightly.html"
    with lp_mod.LocalPrefect(tmp_path / "stack") as lp:
        lp.start_server()
        lp.create_pool()
        lp.deploy()
        lp.start_worker()
        params = {"sources": ["mmlu_pro_tiger", "truthfulqa_multi"], "mirror": str(shared_data),
                  "db": str(db), "report": str(report)}
        fr = lp.run("audit/nightly-audit", params, timeout=180)
        for _ in range(40):  # flow-run logs reach the server in batches, shortly after the run ends
            logs = lp.logs(fr["id"])
            if any("task runner" in m for m in logs):
                break
            time.sleep(0.5)
        # the same audit on a local Dask cluster: its workers report their task runs to this server
        dask_db = tmp_path / "dask.duckdb"
        fr_dask = lp.run("audit/audit-dask", {**params, "db": str(dask_db), "report": None}, timeout=180)
        read_tasks = lp_mod.httpx.post(f"{lp.api}/task_runs/filter", json={
            "flow_runs": {"parent_flow_run_id": {"any_": [fr_dask["id"]]}}}).json()
        weekly = tmp_path / "weekly.html"
        fr_report = lp.run("report/weekly-report", {"db": str(db), "out": str(weekly)}, timeout=120)
        deployments = {d["name"] for d in lp_mod.httpx.post(f"{lp.api}/deployments/filter", json={}).json()}
    assert fr["state"]["type"] == "COMPLETED", (lp.home / "worker.log").read_text()[-3000:]
    assert deployments == {"nightly-audit", "weekly-report", "audit-dask"}
    assert fr["parameters"]["task_runner"] == "threads" and fr["parameters"]["mirror"] == str(shared_data)
    assert any("task runner threads" in m for m in logs)
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.sql("SELECT count(*) FROM responses").fetchall() == [(4 * 308 + 3 * 100 + 300,)]
        assert con.sql("SELECT count(*) FROM sources WHERE uri LIKE 'https://raw.githubusercontent.com/%'"
                       ).fetchall() == [(8,)]  # manifest sources keep their public provenance
        assert con.sql("SELECT count(DISTINCT model), count(DISTINCT threshold) FROM scores").fetchall() == [(7, 4)]
        assert con.sql("SELECT command, status FROM runs").fetchall() == [("audit", "completed")]
    finally:
        con.close()
    assert "id=leaderboards" in report.read_text()
    assert fr_report["state"]["type"] == "COMPLETED" and "id=leaderboards" in weekly.read_text()
    assert fr_dask["state"]["type"] == "COMPLETED", (lp.home / "worker.log").read_text()[-3000:]
    # units are read in groups, one task per group, as many groups as workers here (8 units, 2 workers), split
    # by bytes: the three largest files (the MMLU-Pro outputs of 0.39-0.58 MB) make up one half
    reads = [t for t in read_tasks if t["name"].startswith("read ")]
    assert len(reads) == 2 and all(t["state"]["type"] == "COMPLETED" for t in reads)
    assert sorted(t["name"].split(",")[0] for t in reads) == ["read 3 units", "read 5 units"]
    con = duckdb.connect(str(dask_db), read_only=True)
    try:
        assert con.sql("SELECT count(*) FROM responses").fetchall() == [(4 * 308 + 3 * 100 + 300,)]
        assert "local dask cluster" in con.sql("SELECT params FROM runs").fetchall()[0][0]
    finally:
        con.close()
