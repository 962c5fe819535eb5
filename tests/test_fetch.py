"""Downloads against a real HTTP server on 127.0.0.1 that serves files (with Range), fails with 500, answers slowly,
and cuts connections mid-body. Nothing is monkeypatched: the faults are the server's."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from audit.fetch import Cache, FetchConfig, FetchError, Fetcher
from audit.ingest import read_target
from audit.sources.manifest import entries, resolve_sources

pytestmark = pytest.mark.slow  # starts a real server (still fast: ~seconds)


@dataclass
class Faults:
    """What the server does to a path, consumed one request at a time."""

    status: list[int] = field(default_factory=list)  # answer these statuses first (e.g. [500, 500])
    slow: list[float] = field(default_factory=list)  # sleep this long before answering
    cut_after: list[int] = field(default_factory=list)  # send this many body bytes, then drop the connection
    stall: list[tuple[int, float]] = field(default_factory=list)  # send this many bytes, then go silent this long
    ignore_range: bool = False


@dataclass
class Request:
    path: str
    range: str | None
    status: int
    body_bytes: int


class Site:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.root: Path | None = None  # also serve a folder
        self.faults: dict[str, Faults] = {}
        self.log: list[Request] = []
        self.lock = threading.Lock()

    def add(self, path: str, body: bytes, **faults) -> str:
        self.files[path] = body
        if faults:
            self.faults[path] = Faults(**faults)
        return f"{self.url}{path}"

    def body(self, path: str) -> bytes | None:
        if path in self.files:
            return self.files[path]
        if self.root is not None:
            p = (self.root / path.lstrip("/")).resolve()
            if p.is_file() and p.is_relative_to(self.root.resolve()):
                return p.read_bytes()
        return None

    def requests(self, path: str) -> list[Request]:
        return [r for r in self.log if r.path == path]


def _handler(site: Site):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, headers: dict[str, str], body: bytes, cut: int | None = None,
                  stall: tuple[int, float] | None = None) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            try:
                if stall is not None:
                    self.wfile.write(body[:stall[0]])
                    self.wfile.flush()
                    time.sleep(stall[1])
                    self.wfile.write(body[stall[0]:])
                elif cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                else:
                    self.wfile.write(body)
            except OSError:
                self.close_connection = True

        def do_GET(self) -> None:
            from urllib.parse import unquote

            path = unquote(self.path)
            rng = self.headers.get("Range")
            with site.lock:
                f = site.faults.get(path)
                status = f.status.pop(0) if f and f.status else None
                slow = f.slow.pop(0) if f and f.slow else None
                cut = f.cut_after.pop(0) if f and f.cut_after and status is None else None
                stall = f.stall.pop(0) if f and f.stall and status is None and cut is None else None
            if slow:
                time.sleep(slow)
            body = site.body(path)
            if status is None and body is None:
                status = 404
            if status is not None:
                msg = f"error {status}\n".encode()
                site.log.append(Request(path, rng, status, 0))
                return self._send(status, {"Content-Length": str(len(msg)), "Connection": "close"}, msg)
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            size = len(body)
            headers = {"ETag": etag, "Accept-Ranges": "bytes"}
            start = 0
            if_range = self.headers.get("If-Range")
            if rng and if_range and if_range != etag:
                rng = None  # the file changed since the partial copy: send it whole (RFC 9110 If-Range)
            if rng and rng.startswith("bytes=") and not (f and f.ignore_range):
                start = int(rng[6:].split("-")[0])
                if start >= size:
                    site.log.append(Request(path, rng, 416, 0))
                    return self._send(416, {"Content-Range": f"bytes */{size}", "Content-Length": "0"}, b"")
                part = body[start:]
                headers |= {"Content-Range": f"bytes {start}-{size - 1}/{size}", "Content-Length": str(len(part))}
                site.log.append(Request(path, rng, 206, len(part) if cut is None else min(cut, len(part))))
                return self._send(206, headers, part, cut, stall)
            headers["Content-Length"] = str(size)
            site.log.append(Request(path, self.headers.get("Range"), 200, size if cut is None else min(cut, size)))
            self._send(200, headers, body, cut, stall)

    return Handler


@pytest.fixture
def site():
    s = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    server.daemon_threads = True
    s.url = f"http://127.0.0.1:{server.server_address[1]}"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield s
    server.shutdown()
    server.server_close()


FAST = FetchConfig(attempts=4, backoff=0.05, backoff_max=0.2, read_timeout=0.5, connect_timeout=1.0, progress=False)


@pytest.fixture
def fetcher(tmp_path):
    with Fetcher(Cache(tmp_path / "cache"), FAST) as f:
        yield f


def payload(n: int, seed: int = 0) -> bytes:
    out, block = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def test_download_then_cache_hit_downloads_nothing(site, fetcher):
    body = payload(100_000)
    url = site.add("/a.json", body)
    got = fetcher.fetch(url)
    assert got.path.read_bytes() == body
    assert got.sha256 == hashlib.sha256(body).hexdigest() and not got.from_cache
    assert got.path == fetcher.cache.blob(got.sha256)
    again = fetcher.fetch(url)
    assert again.from_cache and again.path == got.path and again.bytes_downloaded == 0
    assert len(site.requests("/a.json")) == 1  # the second fetch never reached the server
    # a fresh fetcher (a later run) finds it through the cache index
    with Fetcher(fetcher.cache, FAST) as later:
        assert later.fetch(url).from_cache
    assert len(site.requests("/a.json")) == 1


def test_known_sha256_is_a_cache_hit_from_any_url(site, fetcher):
    body = payload(5_000, seed=1)
    fetcher.fetch(site.add("/one.bin", body))
    hit = fetcher.fetch(site.add("/elsewhere.bin", body), sha256=hashlib.sha256(body).hexdigest())
    assert hit.from_cache and site.requests("/elsewhere.bin") == []


def test_500s_are_retried_with_backoff_until_success(site, fetcher):
    body = payload(10_000)
    url = site.add("/flaky.json", body, status=[500, 503])
    got = fetcher.fetch(url)
    assert got.path.read_bytes() == body
    assert got.attempts == 3
    assert [r.status for r in site.requests("/flaky.json")] == [500, 503, 200]
    assert got.failures[0].startswith("HTTP 500") and got.failures[1].startswith("HTTP 503")


def test_slow_response_times_out_and_is_retried(site, fetcher):
    body = payload(2_000)
    url = site.add("/slow.json", body, slow=[1.5])  # read timeout is 0.5 s
    got = fetcher.fetch(url)
    assert got.path.read_bytes() == body and got.attempts == 2
    assert "timed out" in got.failures[0]


def test_cut_connection_resumes_with_a_range_request(site, fetcher):
    body = payload(300_000)
    url = site.add("/big.json", body, cut_after=[120_000])
    got = fetcher.fetch(url)
    assert got.path.read_bytes() == body
    first, second = site.requests("/big.json")
    assert first.range is None and first.status == 200
    assert second.status == 206 and second.range == f"bytes={first.body_bytes}-"
    assert 0 < second.body_bytes < len(body)  # the second try fetched only the rest
    assert got.bytes_downloaded == len(body)  # nothing was downloaded twice
    assert "connection lost" in got.failures[0]


def test_partial_file_survives_a_failed_run_and_the_next_run_resumes(site, tmp_path):
    body = payload(200_000, seed=2)
    url = site.add("/resume.json", body, cut_after=[50_000, 50_000])
    cache = Cache(tmp_path / "cache")
    with Fetcher(cache, FetchConfig(**{**FAST.__dict__, "attempts": 2})) as run1:
        with pytest.raises(FetchError) as e:
            run1.fetch(url)
    assert "connection lost" in str(e.value) and "100,000 bytes are kept" in str(e.value)
    assert cache.partial(url).stat().st_size == 100_000
    with Fetcher(cache, FAST) as run2:
        got = run2.fetch(url)
    assert got.path.read_bytes() == body
    assert got.bytes_downloaded == len(body) - 100_000 < len(body)
    assert site.requests("/resume.json")[-1].range == "bytes=100000-"
    assert not cache.partial(url).exists()


def test_stall_mid_body_times_out_and_resumes(site, fetcher):
    body = payload(150_000, seed=4)
    url = site.add("/stall.json", body, stall=[(40_000, 1.5)])  # read timeout is 0.5 s
    got = fetcher.fetch(url)
    assert got.path.read_bytes() == body and got.attempts == 2
    assert "timed out" in got.failures[0]
    first, second = site.requests("/stall.json")
    assert second.range == "bytes=40000-" and second.status == 206 and second.body_bytes == len(body) - 40_000


def test_a_file_that_changed_since_the_partial_copy_is_fetched_whole(site, tmp_path):
    old, new = payload(100_000, seed=5), payload(100_000, seed=6)
    url = site.add("/moving.json", old, cut_after=[30_000])
    cache = Cache(tmp_path / "cache")
    with Fetcher(cache, FetchConfig(**{**FAST.__dict__, "attempts": 1})) as run1, pytest.raises(FetchError):
        run1.fetch(url)
    site.files["/moving.json"] = new  # republished meanwhile: the ETag changes
    with Fetcher(cache, FAST) as run2:
        got = run2.fetch(url)
    assert got.path.read_bytes() == new  # never a splice of old and new bytes
    last = site.requests("/moving.json")[-1]
    assert last.range == "bytes=30000-" and last.status == 200


def test_server_that_ignores_range_restarts_cleanly(site, fetcher):
    body = payload(80_000, seed=3)
    url = site.add("/norange.json", body, cut_after=[30_000], ignore_range=True)
    got = fetcher.fetch(url)
    assert got.path.read_bytes() == body
    assert [r.status for r in site.requests("/norange.json")] == [200, 200]


def test_permanent_failure_says_what_and_what_to_do(site, fetcher):
    url = site.add("/down.json", b"x", status=[500] * 10)
    with pytest.raises(FetchError) as e:
        fetcher.fetch(url)
    msg = str(e.value)
    assert "after 4 attempts" in msg and "HTTP 500" in msg and "--mirror" in msg
    assert len(site.requests("/down.json")) == 4


def test_404_is_not_retried(site, fetcher):
    with pytest.raises(FetchError) as e:
        fetcher.fetch(f"{site.url}/missing.json")
    assert "HTTP 404" in str(e.value) and "sources.yaml" in str(e.value) and "after 1 attempt:" in str(e.value)
    assert len(site.requests("/missing.json")) == 1
    site.faults["/gone.json"] = Faults(status=[503, 410])
    with pytest.raises(FetchError, match=r"after 2 attempts: HTTP 410"):
        fetcher.fetch(f"{site.url}/gone.json")


def test_sha256_mismatch_is_rejected_and_not_cached(site, fetcher):
    url = site.add("/changed.json", b"new content")
    with pytest.raises(FetchError, match="does not match"):
        fetcher.fetch(url, sha256="0" * 64)
    assert not (fetcher.cache.root / "blobs").exists() or not any((fetcher.cache.root / "blobs").rglob("*0000*"))
    assert fetcher.cache.lookup(url) is None


def test_unreachable_host_fails_fast_the_second_time(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    with Fetcher(Cache(tmp_path / "c"), FAST) as f:
        with pytest.raises(FetchError) as first:
            f.fetch(f"http://127.0.0.1:{port}/a.json")
        assert "cannot connect" in str(first.value) and "after 4 attempts" in str(first.value)
        with pytest.raises(FetchError) as second:
            f.fetch(f"http://127.0.0.1:{port}/b.json")
        assert "unreachable earlier in this run" in str(second.value)


def _http_mirror(tmp_path: Path, shared_data: Path) -> Path:
    """An HTTP mirror laid out like the manifest's files: MMLU-Pro as the published zips, SWE-bench as is."""
    root = tmp_path / "mirror"
    mmlu = next(e for e in entries() if e.name == "mmlu_pro_tiger")
    for f in mmlu.files:
        dest = root / "mmlu_pro_tiger" / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(shared_data / "mmlu_pro_tiger" / f.member, f.member)
    (root / "swebench_leaderboard").mkdir()
    os.link(shared_data / "swebench_leaderboard" / "leaderboards.json",
            root / "swebench_leaderboard" / "leaderboards.json")
    return root


def test_manifest_sources_from_an_http_mirror(site, fetcher, tmp_path, shared_data):
    site.root = _http_mirror(tmp_path, shared_data)
    zip_path = "/mmlu_pro_tiger/model_outputs_Mistral-7B-Instruct-v0.2_5shots.zip"
    site.faults[zip_path] = Faults(status=[500], cut_after=[20_000])
    targets = resolve_sources(["mmlu_pro_tiger", "zeroeval"], mirror=site.url, fetcher=fetcher)
    mmlu, zeroeval = targets
    assert zeroeval.error and "HTTP 404" in zeroeval.error and "result_dirs/math-l5.summary.json" in zeroeval.error
    assert mmlu.error is None
    assert [r.status for r in site.requests(zip_path)] == [500, 200, 206]  # retried, then resumed
    result = read_target(mmlu.path, mmlu.context)
    mmlu_batches = [b for b in result.batches if b.provenance.format == "mmlu_pro_official"]
    assert sorted(b.responses.num_rows for b in mmlu_batches) == [308] * 4
    assert sum(b.quarantine.num_rows for b in result.batches) == 0 and result.unrecognised == []
    uri = next(b.provenance.uri for b in mmlu_batches if "Mistral" in b.provenance.uri)
    assert uri == ("https://raw.githubusercontent.com/TIGER-AI-Lab/MMLU-Pro/f418b116db00b065c2aea046518d8fcf74d39872/"
                   "eval_results/model_outputs_Mistral-7B-Instruct-v0.2_5shots.zip!/"
                   "model_outputs_Mistral-7B-Instruct-v0.2_5shots.json")
    # nothing was unpacked: the source's folder holds the four zips only
    assert sorted(p.suffix for p in Path(mmlu.path).iterdir()) == [".zip"] * 4
    # a second resolution is served from the cache
    n = len(site.log)
    again = resolve_sources(["mmlu_pro_tiger"], mirror=site.url, fetcher=fetcher)
    assert again[0].error is None and len(site.log) == n


def test_ingest_reports_an_unreachable_source_and_keeps_the_others(site, tmp_path, shared_data, monkeypatch, db):
    from catalog.writer import connect_reader
    from flows.audit import ingest_sources

    site.root = _http_mirror(tmp_path, shared_data)
    monkeypatch.setenv("BENCH_AUDIT_CACHE", str(tmp_path / "default-cache"))
    summary = ingest_sources(["mmlu_pro_tiger", "wildbench"], str(db), site.url)
    assert summary["failed"] == 1 and summary["accepted"] == 4 * 308
    con = connect_reader(str(db))
    try:
        rows = con.sql("select target, reason from source_failures").fetchall()
        n = con.sql("select count(*) from responses").fetchall()[0][0]
    finally:
        con.close()
    assert len(rows) == 1 and rows[0][0] == "wildbench" and "HTTP 404" in rows[0][1] and "--mirror" not in rows[0][0]
    assert n == 4 * 308
    assert len(list((tmp_path / "default-cache" / "blobs").rglob("*"))) >= 4  # fetched into the configured cache


def test_a_url_source_is_fetched_and_read(site, fetcher, shared_data):
    body = (shared_data / "mmlu_pro_tiger" / "model_outputs_Meta-Llama-3-70B_5shots.json").read_bytes()
    url = site.add("/x/model_outputs_Meta-Llama-3-70B_5shots.json", body)
    (t,) = resolve_sources([url], fetcher=fetcher)
    assert t.error is None
    result = read_target(t.path, t.context)
    (b,) = result.batches
    assert b.responses.num_rows == 308 and b.provenance.uri == url
    assert b.provenance.sha256 == hashlib.sha256(body).hexdigest()


def test_progress_bar_shows_the_file_and_its_size(site, tmp_path, capsys):
    url = site.add("/shown.json", payload(50_000))
    with Fetcher(Cache(tmp_path / "c"), FetchConfig(**{**FAST.__dict__, "progress": True})) as f:
        f.fetch(url, desc="demo/shown.json")
    err = capsys.readouterr().err
    assert "demo/shown.json" in err and "48.8k" in err  # 50,000 bytes in KiB units


def test_run_with_no_sources_and_no_network_reports_every_source_quickly(tmp_path, monkeypatch):
    """`bench-audit run` with no SOURCE and no mirror: every manifest source is tried, each is reported with the
    reason, and after the first host failure the rest fail at once. The network is cut by a dead proxy."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{port}")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    with Fetcher(Cache(tmp_path / "c"), FAST) as f:
        targets = resolve_sources(None, fetcher=f)
    assert [t.label for t in targets] == [e.name for e in entries()]
    assert all(t.error and t.path == "" for t in targets)
    assert "after 4 attempts" in targets[0].error and "--mirror DIR" in targets[0].error
    assert all("unreachable earlier in this run" in t.error for t in targets[1:])
