"""Which task runner the fan-out uses: threads (default) or Dask, by flow parameter, CLI option or environment.

Resolution order for each setting: the explicit argument (flow parameter / CLI option), then the environment
(``BENCH_AUDIT_TASK_RUNNER`` = threads | dask, ``BENCH_AUDIT_DASK_ADDRESS`` = scheduler address,
``BENCH_AUDIT_DASK_WORKERS`` = local cluster size, ``BENCH_AUDIT_MAX_WORKERS`` = threads), then the defaults
(threads: as many as ``BENCH_AUDIT_READ_THREADS``, i.e. the cores, at most 4; never Prefect's unbounded default).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

KINDS = ("threads", "dask")


@dataclass(frozen=True)
class RunnerSpec:
    kind: str = "threads"
    dask_address: str | None = None
    dask_workers: int = 2
    dask_processes: bool = True
    max_workers: int | None = None

    @classmethod
    def resolve(cls, kind: str | None = None, dask_address: str | None = None, dask_workers: int | None = None,
                max_workers: int | None = None, dask_processes: bool | None = None) -> "RunnerSpec":
        env = os.environ.get
        kind = (kind or env("BENCH_AUDIT_TASK_RUNNER") or "threads").strip().lower()
        address = dask_address or env("BENCH_AUDIT_DASK_ADDRESS") or None
        if address and kind == "threads":
            kind = "dask"  # an address only makes sense for Dask
        if kind not in KINDS:
            raise ValueError(f"task runner {kind!r}: choose one of {', '.join(KINDS)}")
        workers = int(dask_workers or env("BENCH_AUDIT_DASK_WORKERS") or 2)
        threads = max_workers or (int(env("BENCH_AUDIT_MAX_WORKERS")) if env("BENCH_AUDIT_MAX_WORKERS") else None)
        if threads is None:
            # Prefect's own default is unbounded: every read task of a 4,500-model corpus would start at once
            # and hold its units in memory together. The reads and the scoring are CPU-bound: the cores suffice.
            from audit.ingest import read_threads

            threads = read_threads()
        if workers < 1 or threads < 1:
            raise ValueError("worker counts must be at least 1")
        procs = dask_processes if dask_processes is not None else env("BENCH_AUDIT_DASK_PROCESSES", "1") != "0"
        return cls(kind, address, workers, procs, threads)

    @property
    def parallel(self) -> int:
        """How many tasks can run at once (a cluster at an address: its size is unknown here, say 8)."""
        if self.kind == "threads":
            return self.max_workers or 1
        return 8 if self.dask_address else self.dask_workers

    def describe(self) -> str:
        if self.kind == "threads":
            return f"threads (max {self.max_workers})"
        if self.dask_address:
            return f"dask cluster at {self.dask_address}"
        return f"local dask cluster, {self.dask_workers} {'process' if self.dask_processes else 'thread'} workers"

    def build(self):
        if self.kind == "threads":
            from prefect.task_runners import ThreadPoolTaskRunner

            return ThreadPoolTaskRunner(max_workers=self.max_workers)
        from prefect_dask import DaskTaskRunner

        if self.dask_address:
            return DaskTaskRunner(address=self.dask_address)
        import logging

        for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core",
                     "distributed.http.proxy"):  # a local cluster's start/stop chatter
            logging.getLogger(name).setLevel(logging.WARNING)
        return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs={
            "n_workers": self.dask_workers, "threads_per_worker": 1, "processes": self.dask_processes,
            "dashboard_address": None, "silence_logs": 40})

    @contextmanager
    def api_for_workers(self) -> Iterator[None]:
        """Dask workers report task runs to the Prefect API named in the settings they are sent. Without a
        configured server this process uses an ephemeral API that is invisible to them (each would start its
        own); pass them its address instead."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        if self.kind != "dask" or PREFECT_API_URL.value():
            yield
            return
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()  # the ephemeral server this process already talks to (a singleton)
        server.start()
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield
