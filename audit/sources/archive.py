"""Zip archives read in place: members are streamed to the other adapters, never unpacked to disk.

Published outputs are often zipped (the official MMLU-Pro results are ``eval_results/model_outputs_*.zip``).
The ``zip_archive`` adapter claims a ``.zip`` file, checks every member against ``ArchiveLimits`` before anything is
decompressed, and hands each accepted member to the adapter that recognises it, as a read-only, path-like
``ArchivePath`` (``open``, ``read_bytes``, ``read_text``, ``stat``, ``iterdir``, ``name``, ``suffix``, ``parent``...).

A member is rejected, with a quarantine row naming the archive, the member and the reason, when:
  - its name is absolute, has a drive letter or a ``..`` component, or holds a NUL byte (it would land outside
    the archive if extracted; we never extract, but such a name is a sign of a hostile archive);
  - it is a symlink, encrypted, or compressed with a method other than stored / deflate (bz2 and lzma cannot be
    decompressed in bounded memory by ``zipfile``);
  - its uncompressed size exceeds ``max_member_bytes``, its compression ratio exceeds ``max_ratio`` (zip bomb),
    or accepting it would take the archive past ``max_total_bytes`` or ``max_members``;
  - its name repeats an earlier member's (overlapping entries are another zip-bomb construction).
``zipfile`` stops decompressing at a member's declared size, and a counting stream enforces the member limit a
second time, so a lying header cannot inflate past the limits either. Members no adapter recognises, and members
whose adapter fails, are quarantined too: records read = accepted + quarantined holds for the archive.
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
import shutil
import stat as stat_mod
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator

from audit.records import RecordBuilder, SourceBatch
from audit.sources import ReadContext, _load_all, adapters, head, register

_GiB = 1 << 30
_MiB = 1 << 20


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer number of bytes") from None


@dataclass(frozen=True)
class ArchiveLimits:
    max_member_bytes: int = 2 * _GiB  # uncompressed size of one member
    max_total_bytes: int = 8 * _GiB  # uncompressed size of all accepted members together
    max_ratio: float = 200.0  # uncompressed / compressed, checked for members above ratio_floor_bytes
    ratio_floor_bytes: int = 1 * _MiB  # small members may compress absurdly well without being dangerous
    max_members: int = 100_000

    @classmethod
    def from_env(cls) -> "ArchiveLimits":
        """Defaults, overridable by BENCH_AUDIT_ZIP_MAX_MEMBER_BYTES / _MAX_TOTAL_BYTES / _MAX_RATIO / _MAX_MEMBERS."""
        d = cls()
        ratio = os.environ.get("BENCH_AUDIT_ZIP_MAX_RATIO")
        return cls(
            max_member_bytes=_env_int("BENCH_AUDIT_ZIP_MAX_MEMBER_BYTES", d.max_member_bytes),
            max_total_bytes=_env_int("BENCH_AUDIT_ZIP_MAX_TOTAL_BYTES", d.max_total_bytes),
            max_ratio=float(ratio) if ratio else d.max_ratio,
            max_members=_env_int("BENCH_AUDIT_ZIP_MAX_MEMBERS", d.max_members),
        )


class ArchiveLimitError(ValueError):
    """A member would decompress past a limit."""


_DRIVE = re.compile(r"^[A-Za-z]:")
_ALLOWED_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


def member_problem(info: zipfile.ZipInfo, limits: ArchiveLimits) -> str | None:
    """Why this member must not be read (its own properties only), or None."""
    name = info.filename
    if "\x00" in name:
        return "member name contains a NUL byte"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        return f"absolute member name {name!r}: would be written outside the target folder if extracted"
    if ".." in norm.split("/"):
        return f"member name {name!r} contains '..': would escape the target folder if extracted (zip slip)"
    mode = info.external_attr >> 16
    if mode and stat_mod.S_ISLNK(mode):
        return f"member {name!r} is a symbolic link; links are never followed"
    if info.flag_bits & 0x1:
        return f"member {name!r} is encrypted"
    if info.is_dir():
        return None
    if info.compress_type not in _ALLOWED_METHODS:
        return (f"member {name!r} uses compression method {info.compress_type}; only stored and deflate are read "
                "(others cannot be decompressed in bounded memory)")
    if info.file_size > limits.max_member_bytes:
        return (f"member {name!r} is {info.file_size:,} bytes uncompressed, over the {limits.max_member_bytes:,}-byte "
                "member limit (BENCH_AUDIT_ZIP_MAX_MEMBER_BYTES)")
    if info.file_size > limits.ratio_floor_bytes:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            return (f"member {name!r} expands {ratio:,.0f}x ({info.compress_size:,} -> {info.file_size:,} bytes), "
                    f"over the {limits.max_ratio:g}x compression-ratio limit: a zip bomb?")
    return None


class _CountingReader(io.RawIOBase):
    """A member stream that refuses to yield more than ``limit`` bytes."""

    def __init__(self, raw: zipfile.ZipExtFile, limit: int, label: str) -> None:
        self._raw, self._limit, self._label, self._seen = raw, limit, label, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self._raw.read(len(b))
        self._seen += len(data)
        if self._seen > self._limit:
            raise ArchiveLimitError(f"{self._label}: decompressed past the {self._limit:,}-byte member limit")
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


@dataclass
class SafeZip:
    """An opened archive with its members checked against the limits; ``rejected`` lists (member, reason)."""

    path: Path
    limits: ArchiveLimits = field(default_factory=ArchiveLimits.from_env)

    def __post_init__(self) -> None:
        self._spool = None
        source = self.path
        if isinstance(self.path, ArchivePath):
            # A zip inside a zip (an Inspect .eval log in a zipped logs folder): zipfile needs random access, and
            # a member is a stream. Copy it, through the outer archive's limits (member size, ratio), into a
            # private temporary file (memory up to 64 MiB): never extracted under its own name.
            self._spool = tempfile.SpooledTemporaryFile(max_size=64 * _MiB)
            try:
                with self.path.open("rb") as fh:
                    shutil.copyfileobj(fh, self._spool, 1 << 20)
            except BaseException:
                self._spool.close()
                raise
            self._spool.seek(0)
            source = self._spool
        try:
            self.zf = zipfile.ZipFile(source)
        except BaseException:
            if self._spool is not None:
                self._spool.close()
            raise
        self.rejected: list[tuple[str, str]] = []
        self.files: dict[str, zipfile.ZipInfo] = {}
        self.dirs: set[str] = {""}
        total = 0
        for info in self.zf.infolist():
            name = info.filename
            problem = member_problem(info, self.limits)
            key = name.replace("\\", "/").strip("/")
            if problem is None and (key in self.files or key in self.dirs - {""}):
                problem = f"member name {name!r} appears more than once (overlapping entries)"
            if problem is None and not info.is_dir():
                if len(self.files) >= self.limits.max_members:
                    problem = f"archive has more than {self.limits.max_members:,} members (BENCH_AUDIT_ZIP_MAX_MEMBERS)"
                elif total + info.file_size > self.limits.max_total_bytes:
                    problem = (f"member {name!r} would take the archive past its {self.limits.max_total_bytes:,}-byte "
                               "uncompressed total (BENCH_AUDIT_ZIP_MAX_TOTAL_BYTES)")
            if problem:
                self.rejected.append((name, problem))
                continue
            if info.is_dir():
                self.dirs.add(key)
            else:
                self.files[key] = info
                total += info.file_size
            parts = key.split("/")
            for i in range(1, len(parts)):
                self.dirs.add("/".join(parts[:i]))

    @property
    def root(self) -> "ArchivePath":
        return ArchivePath(self, "")

    def open_member(self, key: str) -> io.BufferedReader:
        info = self.files[key]
        raw = self.zf.open(info)
        return io.BufferedReader(_CountingReader(raw, min(info.file_size, self.limits.max_member_bytes),
                                                 f"{self.path.name}!{key}"), buffer_size=1 << 16)

    def close(self) -> None:
        self.zf.close()
        if self._spool is not None:
            self._spool.close()

    def __enter__(self) -> "SafeZip":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Stat:
    def __init__(self, size: int, mtime: float, mode: int) -> None:
        self.st_size, self.st_mtime, self.st_mode = size, mtime, mode


class ArchivePath:
    """A read-only, ``pathlib``-like view of a file or folder inside a ``SafeZip``. Not a filesystem path:
    ``open()`` streams the member, nothing is written to disk."""

    def __init__(self, archive: SafeZip, inner: str) -> None:
        self.archive = archive
        self.inner = inner.strip("/")

    # names
    @property
    def _pure(self) -> PurePosixPath:
        return PurePosixPath(self.inner or ".")

    @property
    def name(self) -> str:
        return self._pure.name if self.inner else self.archive.path.name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def suffixes(self) -> list[str]:
        return PurePosixPath(self.name).suffixes

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def parent(self) -> "ArchivePath":
        if not self.inner:
            return self
        p = self._pure.parent.as_posix()
        return ArchivePath(self.archive, "" if p == "." else p)

    @property
    def parts(self) -> tuple[str, ...]:
        return PurePosixPath(self.inner).parts

    def __truediv__(self, other: str) -> "ArchivePath":
        return ArchivePath(self.archive, f"{self.inner}/{other}" if self.inner else str(other))

    def joinpath(self, *others: str) -> "ArchivePath":
        out = self
        for o in others:
            out = out / o
        return out

    def with_name(self, name: str) -> "ArchivePath":
        return self.parent / name

    def relative_to(self, other: "ArchivePath") -> PurePosixPath:
        if not isinstance(other, ArchivePath) or other.archive is not self.archive:
            raise ValueError(f"{self} is not inside {other}")
        return PurePosixPath(self.inner).relative_to(PurePosixPath(other.inner))

    def as_posix(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{self.archive.path}!/{self.inner}" if self.inner else f"{self.archive.path}!/"

    def __repr__(self) -> str:
        return f"ArchivePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArchivePath) and other.archive is self.archive and other.inner == self.inner

    def __hash__(self) -> int:
        return hash((id(self.archive), self.inner))

    def __lt__(self, other: "ArchivePath") -> bool:
        return self.inner < other.inner

    def resolve(self) -> "ArchivePath":
        return self

    def as_uri(self) -> str:
        return f"{self.archive.path.resolve().as_uri()}!/{self.inner}"

    # queries
    def exists(self) -> bool:
        return self.inner in self.archive.files or self.inner in self.archive.dirs

    def is_file(self) -> bool:
        return self.inner in self.archive.files

    def is_dir(self) -> bool:
        return self.inner in self.archive.dirs

    def is_symlink(self) -> bool:
        return False

    def stat(self) -> _Stat:
        info = self.archive.files.get(self.inner)
        if info is None:
            if self.is_dir():
                return _Stat(0, 0.0, stat_mod.S_IFDIR | 0o555)
            raise FileNotFoundError(f"{self}: no such member")
        import time

        return _Stat(info.file_size, time.mktime(info.date_time + (0, 0, -1)), stat_mod.S_IFREG | 0o444)

    def iterdir(self) -> Iterator["ArchivePath"]:
        if not self.is_dir():
            raise NotADirectoryError(str(self))
        prefix = f"{self.inner}/" if self.inner else ""
        children = {k[len(prefix):].split("/", 1)[0] for k in (*self.archive.files, *self.archive.dirs)
                    if k.startswith(prefix) and k != self.inner and k}
        for c in sorted(children):
            yield self / c

    def glob(self, pattern: str) -> Iterator["ArchivePath"]:
        if "/" in pattern or "**" in pattern:
            base = PurePosixPath(self.inner)
            for k in sorted((*self.archive.files, *self.archive.dirs)):
                if k and PurePosixPath(k).is_relative_to(base) and k != self.inner and \
                        PurePosixPath(k).relative_to(base).match(pattern):
                    yield ArchivePath(self.archive, k)
            return
        for c in self.iterdir():
            if fnmatch.fnmatchcase(c.name, pattern):
                yield c

    def rglob(self, pattern: str) -> Iterator["ArchivePath"]:
        prefix = f"{self.inner}/" if self.inner else ""
        for k in sorted((*self.archive.files, *self.archive.dirs)):
            if k and k.startswith(prefix) and fnmatch.fnmatchcase(PurePosixPath(k).name, pattern):
                yield ArchivePath(self.archive, k)

    # reading
    def open(self, mode: str = "r", buffering: int = -1, encoding: str | None = None, errors: str | None = None,
             newline: str | None = None):
        if any(c in mode for c in "wax+"):
            raise PermissionError(f"{self}: archive members are read-only")
        if not self.is_file():
            raise (IsADirectoryError if self.is_dir() else FileNotFoundError)(str(self))
        stream = self.archive.open_member(self.inner)
        if "b" in mode:
            return stream
        return io.TextIOWrapper(stream, encoding=encoding or "utf-8", errors=errors, newline=newline)

    def read_bytes(self) -> bytes:
        with self.open("rb") as fh:
            return fh.read()

    def read_text(self, encoding: str | None = None, errors: str | None = None) -> str:
        with self.open("r", encoding=encoding, errors=errors) as fh:
            return fh.read()


def is_zip(path: Path | ArchivePath) -> bool:
    """A zip file, or a zip archive member that is itself a zip (the zip adapter does not open those: the
    adapters of zip-shaped formats, e.g. Inspect's .eval, do)."""
    return isinstance(path, (Path, ArchivePath)) and path.is_file() and head(path, 4) in (b"PK\x03\x04",
                                                                                           b"PK\x05\x06")


def _walk(folder: ArchivePath, pool: list, units: list, unrecognised: list) -> None:
    """Folder-shaped formats claim whole folders first, as in ``audit.sources.discover``."""
    for a in pool:
        if _sniff(a, folder):
            units.append((a, folder))
            return
    for child in folder.iterdir():
        if child.name.startswith(".") or child.name == "__MACOSX":
            continue
        if child.is_dir():
            _walk(child, pool, units, unrecognised)
            continue
        owner = next((a for a in pool if _sniff(a, child)), None)
        if owner is not None:
            units.append((owner, child))
        elif child.name.upper() not in {"SOURCE.MD", "README.MD", "LICENSE"} and not _auxiliary(child):
            unrecognised.append(child)


def _auxiliary(path: ArchivePath) -> bool:
    """Read through another unit (gold files, summaries, input data), as ``discover`` treats them."""
    from audit.sources import _AUXILIARY

    for pred in _AUXILIARY:
        try:
            if pred(path):
                return True
        except Exception:
            continue
    return False


def _sniff(adapter, path: ArchivePath) -> bool:
    try:
        return bool(adapter.sniff(path))
    except Exception:  # an adapter that cannot look inside an archive member simply does not claim it
        return False


class ZipArchive:
    name = "zip_archive"
    description = "Zip archive of any recognised format; members are streamed, never unpacked, with size limits"
    example = "eval_results/model_outputs_Mistral-7B-Instruct-v0.2_5shots.zip (MMLU-Pro as published)"

    def __init__(self, limits: ArchiveLimits | None = None) -> None:
        self.limits = limits

    def sniff(self, path: Path) -> bool:
        return is_zip(path)

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        source_id = ctx.source_id(self.name, path)
        prov = ctx.provenance(self.name, path, source_id)
        own = RecordBuilder(source_id)  # archive-level problems: one quarantine row per member
        label = path.name
        try:
            archive = SafeZip(path, self.limits or ArchiveLimits.from_env())
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
            own.reject(label, None, f"unreadable zip archive: {type(e).__name__}: {e}")
            yield own.finish(prov)
            return
        with archive:
            for member, reason in archive.rejected:
                own.reject(f"{label}!{member}", member, reason)
            base = ctx.source_name or ctx.root.name
            rel = path.name if path == ctx.root else path.relative_to(ctx.root).as_posix()
            inner_ctx = ReadContext(root=archive.root, uri_prefix=prov.uri + "!", revision=ctx.revision,
                                    license=ctx.license, source_name=f"{base}/{rel}!" if path != ctx.root else f"{base}!")
            pool = [a for a in adapters().values() if a.name != self.name]
            units: list = []
            unrecognised: list[ArchivePath] = []
            _walk(archive.root, pool, units, unrecognised)
            for member in unrecognised:
                own.reject(f"{label}!{member.inner}", None,
                           "no adapter recognises this archive member (see `bench-audit sources`)")
            for adapter, unit in units:
                try:
                    yield from adapter.read(unit, inner_ctx)
                except Exception as e:  # one bad member never costs the others
                    own.reject(f"{label}!{unit.inner or '/'}", None,
                               f"adapter {adapter.name} failed on this archive member: {type(e).__name__}: {e}")
            if not (units or unrecognised or archive.rejected):
                own.reject(f"{label}!/", None, "empty zip archive: it holds no members to read")
        if own.n_read:
            yield own.finish(prov)


register(ZipArchive())
# Importing this module first (``from audit.sources.archive import ...``) must still leave every format known.
_load_all()
