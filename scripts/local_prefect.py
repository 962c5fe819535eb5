#!/usr/bin/env python3
"""A local Prefect stack for bench-audit, in one command: server on 127.0.0.1, process work pool, deployments
from prefect.yaml, a worker, and one triggered run, watched to its end (docs/orchestration.md).

    python3 -m uv run python scripts/local_prefect.py --param mirror='"../shared/data"'
    python3 -m uv run python scripts/local_prefect.py --keep-running      # leave server + worker up (Ctrl-C stops)

Everything lives under --home (default .prefect-local/): PREFECT_HOME (the server's SQLite database) and the
server and worker logs. The functions are importable; the deployment test drives the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
POOL = "bench-audit"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalPrefect:
    home: Path
    port: int = 0
    repo: Path = REPO
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "PREFECT_HOME": str(self.home / "prefect"),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
            "BENCH_AUDIT_HOME": str(self.repo),  # the pull step's working directory
        })
        env.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
        return env

    def prefect(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "prefect", *args]
        out = subprocess.run(cmd, cwd=self.repo, env=self.env(), capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return out

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.home / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "prefect", *args], cwd=self.repo, env=self.env(),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_server(self, timeout: float = 120) -> None:
        proc = self._spawn("server", "server", "start", "--host", "127.0.0.1", "--port", str(self.port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited ({proc.returncode}); see {self.home / 'server.log'}")
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"server not healthy after {timeout}s; see {self.home / 'server.log'}")

    def create_pool(self, pool: str = POOL) -> None:
        self.prefect("work-pool", "create", pool, "--type", "process", "--overwrite")

    def deploy(self) -> str:
        return self.prefect("--no-prompt", "deploy", "--all").stdout

    def start_worker(self, pool: str = POOL) -> None:
        self._spawn("worker", "worker", "start", "--pool", pool)

    def run(self, deployment: str = "audit/nightly-audit", params: dict | None = None, timeout: float = 300) -> dict:
        """Trigger a run of ``deployment`` and wait for a terminal state; returns the flow run (JSON)."""
        out = self.prefect("deployment", "run", deployment, "--params", json.dumps(params or {}))
        found = re.search(r"UUID\W+([0-9a-f]{8}-[0-9a-f-]{27})", out.stdout + out.stderr)
        if not found:
            raise RuntimeError(f"no flow run id in the output of `prefect deployment run`:\n{out.stdout}{out.stderr}")
        run_id = found.group(1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fr = httpx.get(f"{self.api}/flow_runs/{run_id}", timeout=10).json()
            if (fr.get("state") or {}).get("type") in TERMINAL:
                return fr
            time.sleep(1)
        raise TimeoutError(f"flow run {run_id} not finished after {timeout}s; see {self.home / 'worker.log'}")

    def logs(self, flow_run_id: str) -> list[str]:
        got = httpx.post(f"{self.api}/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run_id]}},
                                                          "sort": "TIMESTAMP_ASC", "limit": 200}, timeout=10)
        return [r["message"] for r in got.json()]

    def stop(self) -> None:
        """Worker first, then the server."""
        for name in ("worker", "server"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def __enter__(self) -> "LocalPrefect":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--home", default=str(REPO / ".prefect-local"), help="state and logs (default: .prefect-local)")
    p.add_argument("--port", type=int, default=4200, help="server port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--deployment", default="audit/nightly-audit", help="what to trigger (FLOW/DEPLOYMENT)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=JSON",
                   help='a parameter override, e.g. mirror=\'"../shared/data"\' or task_runner=\'"dask"\'')
    p.add_argument("--no-run", action="store_true", help="set everything up but trigger nothing")
    p.add_argument("--keep-running", action="store_true", help="leave the server and worker up until Ctrl-C")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the run")
    args = p.parse_args(argv)
    params = {}
    for kv in args.param:
        k, _, v = kv.partition("=")
        try:
            params[k] = json.loads(v)
        except ValueError:
            params[k] = v
    with LocalPrefect(Path(args.home), args.port) as lp:
        print(f"server  {lp.api.removesuffix('/api')}  (PREFECT_HOME={lp.home / 'prefect'})", flush=True)
        lp.start_server()
        lp.create_pool()
        lp.deploy()
        print("deployed prefect.yaml: audit/nightly-audit, report/weekly-report, audit/audit-dask", flush=True)
        lp.start_worker()
        print(f"worker  pool {POOL}  (log: {lp.home / 'worker.log'})", flush=True)
        rc = 0
        if not args.no_run:
            fr = lp.run(args.deployment, params, args.timeout)
            state = fr["state"]["type"]
            print(f"run     {args.deployment} -> {fr['name']} {state}", flush=True)
            rc = 0 if state == "COMPLETED" else 1
        if args.keep_running:
            print(f"UI at {lp.api.removesuffix('/api')}; export PREFECT_API_URL={lp.api} to use the CLI. Ctrl-C stops.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return rc


if __name__ == "__main__":
    raise SystemExit(main())
