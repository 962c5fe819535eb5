"""Headless Chromium (Debian's `chromium`) for checking and screenshotting the report. No network is used:
the report is a local file with no external references, and every background service is switched off."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

class ChromiumError(RuntimeError):
    """Chromium ran but did not render the page."""


FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--disable-extensions", "--mute-audio"]


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError("no chromium found: install Debian's package (`apt-get install -y chromium`)")


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="bench-audit-chromium-") as profile:  # a fresh profile every time
        return subprocess.run([find_chromium(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)


def dump_dom(page: str | Path, *, timeout: float = 60) -> str:
    """The DOM of a local HTML file after Chromium has loaded it (scripts, if any, have run)."""
    page = Path(page).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"{page}: no such report")
    res = _run(["--dump-dom", page.as_uri()], timeout)
    if res.returncode != 0 or not res.stdout.strip():
        raise ChromiumError(f"chromium could not render {page} (exit {res.returncode}): {res.stderr[-2000:]}")
    return res.stdout


def screenshot(page: str | Path, out: str | Path, *, width: int = 1366, height: int = 3000,
               timeout: float = 60) -> Path:
    """A PNG of the report as a laptop-width window shows it (height = how much of the page to capture)."""
    page, out = Path(page).resolve(), Path(out).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"{page}: no such report")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    res = _run([f"--window-size={width},{height}", f"--screenshot={out}", page.as_uri()], timeout)
    if res.returncode != 0 or not out.is_file():
        raise ChromiumError(f"chromium could not screenshot {page} (exit {res.returncode}): {res.stderr[-2000:]}")
    return out
