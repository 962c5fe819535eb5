"""One run writes a catalog at a time: a lock file beside the catalog, naming who holds it.

DuckDB already refuses a second process while one holds the file open, but a run opens and closes the catalog
many times (between its parallel phases), so two runs could interleave their writes. ``CatalogLock`` is held for
the whole run: ``<catalog>.lock`` is created atomically (O_EXCL) with the holder's pid, host, run and start time.
A lock whose holder is gone (same host, pid no longer alive, or the pid now belongs to a younger process) is
stale: it is taken over, with a note. A lock held from another host cannot be checked; the message says how to
remove it by hand if that host is known to be down.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from catalog.writer import CatalogLocked


def lock_path(db: str | Path) -> Path:
    db = Path(db)
    return db.with_name(db.name + ".lock")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # half-written or garbled: judged by its age below


def holder_alive(info: dict[str, Any]) -> bool:
    """False when the holder is known to be gone; True when alive or when it cannot be checked (other host)."""
    if info.get("host") != socket.gethostname():
        return True
    pid = info.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        proc = psutil.Process(pid)
        # pid reuse: a process that started after the lock was taken is not the holder
        return proc.create_time() <= float(info.get("started", 0)) + 1.0 and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def describe(info: dict[str, Any]) -> str:
    since = info.get("started")
    when = datetime.fromtimestamp(since, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if since else "?"
    return (f"{info.get('purpose', 'a run')} {info.get('run', '')} (pid {info.get('pid', '?')} on host "
            f"{info.get('host', '?')}, since {when})").replace("  ", " ")


class CatalogLock:
    """Context manager: ``with CatalogLock(db, purpose="audit"):`` ... raises ``CatalogLocked`` if held.

    ``wait`` seconds: how long to wait for a live holder before giving up (0 = fail at once).
    """

    def __init__(self, db: str | Path, *, purpose: str = "bench-audit run", run: str | None = None,
                 wait: float = 0.0, poll: float = 0.5) -> None:
        self.db = Path(db)
        self.path = lock_path(self.db)
        self.purpose, self.run, self.wait, self.poll = purpose, run or "", wait, poll
        self.token = uuid.uuid4().hex
        self.took_over: dict[str, Any] | None = None
        self.held = False

    def _info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "purpose": self.purpose,
                "run": self.run, "token": self.token, "catalog": str(self.db.resolve())}

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self._info(), fh)
        return True

    def acquire(self) -> "CatalogLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait
        while True:
            if self._try_create():
                self.held = True
                return self
            info = _read(self.path)
            if info is None:
                continue  # released between our two calls: try again
            garbled = not info
            if garbled and time.time() - self._mtime() < 10:
                time.sleep(0.05)  # a holder is still writing its lock file
                continue
            if garbled or not holder_alive(info):
                # Stale: move it aside under a unique name (only one contender wins the rename), then retry.
                aside = self.path.with_name(f"{self.path.name}.stale-{self.token}")
                try:
                    os.rename(self.path, aside)
                except FileNotFoundError:
                    continue
                self.took_over = _read(aside) or {}
                aside.unlink(missing_ok=True)
                continue
            if time.monotonic() >= deadline:
                raise CatalogLocked(
                    f"{self.db} is being written by {describe(info)}. Two runs cannot write one catalog at once: "
                    f"wait for it to finish, or use another --db. If that process is known to be gone (e.g. its "
                    f"host is down), delete {self.path}.")
            time.sleep(self.poll)

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return time.time()

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        info = _read(self.path)
        if info and info.get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "CatalogLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
