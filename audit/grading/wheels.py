"""Harness wheels as archives: found (option, environment, user cache) or fetched with `pip download --no-deps`.

Nothing here imports a harness. A wheel is read as a zip in memory; an unpacked folder (a site-packages copy or
an extracted wheel) is read the same way, so the catalog readers take either.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

# The releases the catalog readers were written against (the "current release" when this was measured);
# BENCH_AUDIT_<NAME>_VERSION overrides, BENCH_AUDIT_<NAME>_WHEEL points at a wheel file or an unpacked folder.
HARNESSES = {
    "lm_eval": {"dist": "lm-eval", "version": "0.4.13", "package": "lm_eval"},
    "helm": {"dist": "crfm-helm", "version": "0.5.16", "package": "helm"},
}


MAX_WHEEL_BYTES = 200 * 1024 * 1024  # the wheels read here are ~9 MB; anything far larger is not one of them


class WheelUnavailable(RuntimeError):
    """No wheel given, none cached, and `pip download` failed (offline without a package index?)."""


def cache_dir() -> Path:
    base = os.environ.get("BENCH_AUDIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "bench-audit")
    return Path(base) / "wheels"


def _env_key(name: str, what: str) -> str:
    return f"BENCH_AUDIT_{name.upper()}_{what}"


def version_of(name: str) -> str:
    return os.environ.get(_env_key(name, "VERSION")) or HARNESSES[name]["version"]


def _wheel_prefix(dist: str, version: str) -> str:
    return f"{dist.replace('-', '_')}-{version}-"


def _pip_command() -> list[str]:
    """pip of this interpreter if it has one, else the first pip on PATH (both are the ordinary PyPI client)."""
    try:
        import pip  # noqa: F401
        return [sys.executable, "-m", "pip"]
    except ImportError:
        for exe in ("pip3", "pip"):
            if shutil.which(exe):
                return [exe]
    raise WheelUnavailable("no pip available to download the harness wheel; pass the wheel with --harness-wheel")


def locate(name: str, explicit: str | os.PathLike | None = None, download: bool = True) -> Path:
    """A wheel file or an unpacked folder for harness ``name`` ('lm_eval' or 'helm')."""
    spec = HARNESSES[name]
    given = explicit or os.environ.get(_env_key(name, "WHEEL"))
    version = version_of(name)
    if given:
        p = Path(given).expanduser()
        if p.is_file() or (p / spec["package"]).is_dir():
            return p
        if p.is_dir():  # a folder of downloaded wheels
            found = sorted(p.glob(_wheel_prefix(spec["dist"], version) + "*.whl")) or \
                sorted(p.glob(spec["dist"].replace("-", "_") + "-*.whl"))
            if found:
                return found[-1]
        raise WheelUnavailable(f"{p}: neither a {spec['dist']} wheel nor a folder holding {spec['package']}/")
    cache = cache_dir()
    found = sorted(cache.glob(_wheel_prefix(spec["dist"], version) + "*.whl"))
    if found:
        return found[-1]
    if not download:
        raise WheelUnavailable(f"{spec['dist']}=={version} is not in {cache} and downloading is off")
    cache.mkdir(parents=True, exist_ok=True)
    cmd = _pip_command() + ["download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                            "--quiet", "-d", str(cache), f"{spec['dist']}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    found = sorted(cache.glob(_wheel_prefix(spec["dist"], version) + "*.whl"))
    if proc.returncode != 0 or not found:
        raise WheelUnavailable(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return found[-1]


@dataclass
class Archive:
    """Read-only view of a wheel (zip, held in memory) or of an unpacked folder, by archive member name."""

    origin: Path
    _zip: zipfile.ZipFile | None = None

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Archive":
        p = Path(path)
        if p.is_file():
            if p.stat().st_size > MAX_WHEEL_BYTES:
                raise WheelUnavailable(f"{p}: {p.stat().st_size:,} bytes, over the {MAX_WHEEL_BYTES:,} limit")
            try:
                return cls(p, zipfile.ZipFile(io.BytesIO(p.read_bytes())))
            except zipfile.BadZipFile as e:
                raise WheelUnavailable(f"{p}: not a wheel (zip): {e}") from e
        if p.is_dir():
            return cls(p)
        raise WheelUnavailable(f"{p}: no such wheel or folder")

    def names(self) -> list[str]:
        if self._zip is not None:
            return [n for n in self._zip.namelist() if not n.endswith("/")]
        return sorted(f.relative_to(self.origin).as_posix() for f in self.origin.rglob("*") if f.is_file())

    def read(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(name)
        return (self.origin / name).read_bytes()

    def has(self, name: str) -> bool:
        if self._zip is not None:
            try:
                self._zip.getinfo(name)
                return True
            except KeyError:
                return False
        return (self.origin / name).is_file()

    def extract(self, prefix: str, dest: Path) -> Path:
        """Copy the members under ``prefix`` to ``dest`` (for the probe runner, which imports grader files)."""
        for n in self.names():
            if n.startswith(prefix) and ".." not in n.split("/"):
                target = dest / n
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.read(n))
        return dest
