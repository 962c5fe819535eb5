"""HTTP(S) downloads into a content-addressed cache: retries with backoff, resumable, verified, with a progress bar.

    fetcher = Fetcher()                       # cache in $BENCH_AUDIT_CACHE or ~/.cache/bench-audit
    got = fetcher.fetch(url, sha256=None)     # -> Fetched(path, sha256, size, from_cache, bytes_downloaded, attempts)

Cache layout (see docs/sources.md):
    blobs/<aa>/<sha256>        finished downloads, named by the sha256 of their content
    partial/<key>.part         an interrupted download (key = sha256 of the URL); the next attempt resumes it
    index.json                 URL -> {sha256, size, etag, fetched_at}, for sources whose hash is not known ahead
    views/<name>/...           a manifest source laid out as its files' paths (hard links to blobs)

A cache hit (the manifest's sha256, or the index's entry for the URL, names a blob that exists) downloads nothing.
Retried: connection errors, timeouts (a server that is too slow to answer or stalls mid-body), connections cut
mid-body, HTTP 5xx, 408 and 429 (honouring Retry-After up to the backoff cap). Not retried: other 4xx, a sha256
mismatch. A failure raises ``FetchError`` whose message says what happened and what to do.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import httpx
from tqdm.auto import tqdm

RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


def default_cache_dir() -> Path:
    env = os.environ.get("BENCH_AUDIT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "bench-audit"


@dataclass
class FetchConfig:
    attempts: int = 5  # total tries per file, the first included
    backoff: float = 0.5  # seconds before the 2nd try; doubles each time
    backoff_max: float = 10.0
    connect_timeout: float = 10.0
    read_timeout: float = 30.0  # a server silent for this long (headers or mid-body) counts as a failed try
    progress: bool | None = None  # None: a bar only when stderr is a terminal

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        return min(self.backoff_max, self.backoff * (2 ** (attempt - 1)))


class FetchError(RuntimeError):
    def __init__(self, url: str, reason: str, hint: str = "", attempts: int = 0) -> None:
        self.url, self.reason, self.hint, self.attempts = url, reason, hint, attempts
        tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
        super().__init__(f"GET {url} failed{tries}: {reason}" + (f". {hint}" if hint else ""))


class _Retry(Exception):
    """One failed try that may succeed next time."""

    def __init__(self, reason: str, wait: float | None = None, connect: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.wait, self.connect = reason, wait, connect


@dataclass
class Fetched:
    url: str
    path: Path
    sha256: str
    size: int
    from_cache: bool
    bytes_downloaded: int = 0
    attempts: int = 0
    failures: list[str] = field(default_factory=list)  # the reason of each failed try, in order


_MIRROR_HINT = ("Retry later, or pass --mirror DIR where DIR/<source name> holds a copy (docs/sources.md)")


class Cache:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else default_cache_dir()

    def blob(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256[:2] / sha256

    def partial(self, url: str) -> Path:
        return self.root / "partial" / (hashlib.sha256(url.encode()).hexdigest() + ".part")

    @property
    def index_path(self) -> Path:
        return self.root / "index.json"

    def index(self) -> dict[str, dict]:
        try:
            return json.loads(self.index_path.read_text("utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def lookup(self, url: str, sha256: str | None = None) -> Path | None:
        """The cached blob for this content (or, with no hash given, for this URL), if present."""
        if sha256 is None:
            sha256 = self.index().get(url, {}).get("sha256")
        if sha256:
            p = self.blob(sha256)
            if p.is_file():
                return p
        return None

    @contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """An exclusive lock between processes sharing the cache (one writer per URL, one for the index)."""
        (self.root / "locks").mkdir(parents=True, exist_ok=True)
        with open(self.root / "locks" / f"{name}.lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def remember(self, url: str, sha256: str, size: int, etag: str | None) -> None:
        with self.locked("index"):
            idx = self.index()
            idx[url] = {"sha256": sha256, "size": size, "etag": etag, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                                 time.gmtime())}
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".index-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(idx, fh, indent=1, sort_keys=True)
            os.replace(tmp, self.index_path)

    def store(self, partial: Path, sha256: str) -> Path:
        dest = self.blob(sha256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, dest)
        return dest

    def usage(self) -> dict[str, int]:
        """Files and bytes held: finished blobs and partial downloads."""
        out = {}
        for kind, pattern in (("blobs", "blobs/*/*"), ("partial", "partial/*.part")):
            files = [p for p in self.root.glob(pattern) if p.is_file()]
            out[kind] = len(files)
            out[f"{kind}_bytes"] = sum(p.stat().st_size for p in files)
        return out

    def clear(self) -> None:
        """Delete everything cached (downloads, partial downloads, the index, source views)."""
        shutil.rmtree(self.root, ignore_errors=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Fetcher:
    """Downloads through one ``httpx.Client``. Hosts that refused every connection try are remembered for the
    life of the fetcher, so the next file from the same host fails at once instead of backing off again."""

    def __init__(self, cache: Cache | str | Path | None = None, config: FetchConfig | None = None,
                 client: httpx.Client | None = None) -> None:
        self.cache = cache if isinstance(cache, Cache) else Cache(cache)
        self.config = config or FetchConfig()
        self._client = client
        self._own_client = client is None
        self._dead_hosts: dict[str, str] = {}

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            c = self.config
            self._client = httpx.Client(
                follow_redirects=True,
                timeout=httpx.Timeout(c.read_timeout, connect=c.connect_timeout),
                headers={"User-Agent": "bench-audit (+https://github.com/; published-output audit)",
                         "Accept-Encoding": "identity"},  # byte ranges must address the stored bytes
            )
        return self._client

    def close(self) -> None:
        if self._client is not None and self._own_client:
            self._client.close()
            self._client = None

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def fetch(self, url: str, *, sha256: str | None = None, desc: str | None = None) -> Fetched:
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise FetchError(url, f"unsupported URL scheme {scheme!r}", "Give an http(s) URL or a local path")
        sha256 = sha256.lower() if sha256 else None
        hit = self.cache.lookup(url, sha256)
        if hit is not None:
            return Fetched(url, hit, hit.name, hit.stat().st_size, from_cache=True)
        host = urlsplit(url).netloc
        if host in self._dead_hosts:
            raise FetchError(url, f"host {host} was unreachable earlier in this run ({self._dead_hosts[host]})",
                             _MIRROR_HINT)
        part = self.cache.partial(url)
        part.parent.mkdir(parents=True, exist_ok=True)
        with self.cache.locked(part.stem[:32]):
            hit = self.cache.lookup(url, sha256)  # another process may have finished it while we waited
            if hit is not None:
                return Fetched(url, hit, hit.name, hit.stat().st_size, from_cache=True)
            return self._download(url, part, sha256, desc or Path(urlsplit(url).path).name or host)

    def _download(self, url: str, part: Path, sha256: str | None, desc: str) -> Fetched:
        c = self.config
        failures: list[str] = []
        downloaded = 0
        attempt = 0
        etag: str | None = None
        only_connect_errors = True
        while True:
            attempt += 1
            try:
                got, etag = self._try(url, part, desc)
                downloaded += got
                break
            except FetchError as e:  # not worth retrying; say how many tries it took to learn that
                raise FetchError(url, e.reason, e.hint, attempts=attempt) from None
            except _Retry as r:
                failures.append(r.reason)
                downloaded += getattr(r, "got", 0)
                only_connect_errors &= r.connect
                if attempt >= c.attempts:
                    if only_connect_errors:
                        self._dead_hosts[urlsplit(url).netloc] = r.reason
                    hint = ("Check the network connection and proxy settings (HTTPS_PROXY). " if r.connect
                            else "The server keeps failing. ") + _MIRROR_HINT
                    kept = part.stat().st_size if part.exists() else 0
                    if kept:
                        hint += f". {kept:,} bytes are kept in the cache; the next run resumes from there"
                    raise FetchError(url, r.reason, hint, attempts=attempt) from None
                wait = c.delay(attempt) if r.wait is None else min(max(r.wait, 0.0), c.backoff_max)
                time.sleep(wait)
        digest = sha256_file(part)
        if sha256 and digest != sha256:
            part.unlink(missing_ok=True)
            part.with_name(part.name + ".etag").unlink(missing_ok=True)
            raise FetchError(url, f"content sha256 {digest} does not match the manifest's {sha256}",
                             "The published file changed or the manifest is wrong: check the revision and sha256 "
                             "in catalog/registry/sources.yaml", attempts=attempt)
        size = part.stat().st_size
        part.with_name(part.name + ".etag").unlink(missing_ok=True)
        path = self.cache.store(part, digest)
        self.cache.remember(url, digest, size, etag)
        return Fetched(url, path, digest, size, from_cache=False, bytes_downloaded=downloaded, attempts=attempt,
                       failures=failures)

    def _try(self, url: str, part: Path, desc: str) -> tuple[int, str | None]:
        """One GET, appending to ``part``; returns (bytes received, etag). Raises _Retry or FetchError."""
        offset = part.stat().st_size if part.exists() else 0
        meta = part.with_name(part.name + ".etag")  # the validator of the partial bytes, for If-Range
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        if offset and meta.exists():
            headers["If-Range"] = meta.read_text("utf-8")
        got = 0
        try:
            with self.client.stream("GET", url, headers=headers) as resp:
                status = resp.status_code
                if status == 416 and offset:
                    # Nothing left to send: the partial file is complete if its size is the resource's size.
                    total = resp.headers.get("content-range", "").rpartition("/")[2]
                    if total.isdigit() and int(total) == offset:
                        return 0, resp.headers.get("etag")
                    part.unlink(missing_ok=True)
                    raise _Retry(f"HTTP 416 for a resume from byte {offset:,}; restarting from the beginning", wait=0)
                if status in RETRY_STATUS:
                    raise _Retry(f"HTTP {status} {resp.reason_phrase}".rstrip(), wait=_retry_after(resp))
                if status >= 400:
                    hint = {404: "The file is not at this URL (any more): check the source's base_url, revision and "
                                 "files in catalog/registry/sources.yaml",
                            403: "Access denied: the file may need credentials or be rate-limited; " + _MIRROR_HINT,
                            401: "The server wants credentials; bench-audit only reads public files"}.get(
                        status, _MIRROR_HINT)
                    raise FetchError(url, f"HTTP {status} {resp.reason_phrase}".rstrip(), hint, attempts=1)
                if status == 206:
                    start = _range_start(resp.headers.get("content-range", ""))
                    if start != offset:
                        part.unlink(missing_ok=True)
                        raise _Retry(f"server answered a resume from byte {offset:,} with bytes from {start}; "
                                     "restarting from the beginning", wait=0)
                    mode = "ab"
                else:  # 200: the whole body, whatever we asked for (no range support, or the file changed)
                    offset, mode = 0, "wb"
                    etag = resp.headers.get("etag")
                    if etag and not etag.startswith("W/"):
                        meta.write_text(etag, "utf-8")
                    else:
                        meta.unlink(missing_ok=True)
                length = resp.headers.get("content-length")
                total = offset + int(length) if length and length.isdigit() else None
                with part.open(mode) as fh, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                                 unit_divisor=1024, desc=desc, leave=False,
                                                 disable=self._bar_disabled()) as bar:
                    for chunk in resp.iter_raw():  # unchunked: every byte received is kept
                        fh.write(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
                return got, resp.headers.get("etag")
        except httpx.TimeoutException as e:
            r = _Retry(f"timed out ({type(e).__name__}: the server was silent for more than "
                       f"{self.config.read_timeout:g} s)" if not isinstance(e, httpx.ConnectTimeout)
                       else f"connection timed out after {self.config.connect_timeout:g} s",
                       connect=isinstance(e, httpx.ConnectTimeout))
        except httpx.ConnectError as e:
            r = _Retry(f"cannot connect: {e}", connect=True)
        except httpx.TransportError as e:  # cut mid-body, reset, protocol errors
            r = _Retry(f"connection lost after {got:,} bytes of this try ({type(e).__name__}: {e})")
        r.got = got  # type: ignore[attr-defined]
        raise r

    def _bar_disabled(self) -> bool | None:
        p = self.config.progress
        return None if p is None else not p


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after", "")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _range_start(content_range: str) -> int | None:
    # "bytes 100-199/200"
    try:
        unit, _, rest = content_range.partition(" ")
        return int(rest.split("-", 1)[0]) if unit == "bytes" else None
    except ValueError:
        return None
