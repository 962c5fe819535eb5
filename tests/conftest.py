"""Shared test set-up: hermetic Prefect / Hugging Face settings, and the real published outputs in ../shared/data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before anything imports prefect or datasets: a private home, no analytics, no network.
_HOME = Path(tempfile.mkdtemp(prefix="bench-audit-tests-"))
os.environ.setdefault("PREFECT_HOME", str(_HOME / "prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("HF_HOME", str(_HOME / "hf"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Flow tests classify from curated + empirical evidence only; the harness catalogs and probes have their own tests
# (test_grading_catalogs.py) and one end-to-end run switches them on (test_run_end_to_end.py).
os.environ.setdefault("BENCH_AUDIT_HARNESS_CATALOGS", "0")
os.environ.setdefault("BENCH_AUDIT_PROBES", "0")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BENCH_AUDIT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real published outputs beside the checkout; tests that need them skip, visibly, where absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real published outputs not found at {SHARED_DATA} (clone with ../shared beside the repo, "
                    "or set BENCH_AUDIT_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "catalog.duckdb"
