"""Inspect AI binary .eval logs, written by the tests in the layout Inspect's EvalRecorder writes
(inspect_ai/log/_recorders/eval.py): a zip of _journal/start.json, samples/<id>_epoch_<n>.json,
_journal/summaries/<k>.json, summaries.json and header.json."""

from __future__ import annotations

import copy
import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
import zstandard
from cli_ingest import ingest, query
from test_source_inspect_log import _sample, finished_log

from audit.ingest import read_target
from audit.sources import ReadContext, discover
from audit.sources.archive import ArchiveLimits
from audit.sources.inspect_eval import InspectEval

NAME = "2024-05-29T12-38-43_gpqa-diamond_abc"


_log = finished_log  # the same finished log the JSON adapter's test reads


def _summary(s: dict) -> dict:
    return {k: s[k] for k in ("id", "epoch", "input", "target", "scores")}


def _member(name: str, value) -> tuple[str, bytes]:
    return name, json.dumps(value, indent=2).encode()


def eval_members(log: dict, finished: bool = True) -> list[tuple[str, bytes]]:
    """The members Inspect writes for ``log``, in its order: start, the samples and their journal summary as
    they finish, then (on log_finish) all summaries and the header (the log without samples)."""
    samples = log.get("samples") or []
    out = [_member("_journal/start.json", {k: log[k] for k in ("version", "eval", "plan")})]
    out += [_member(f"samples/{s['id']}_epoch_{s['epoch']}.json", s) for s in samples]
    if samples:
        out.append(_member("_journal/summaries/1.json", [_summary(s) for s in samples]))
    if finished:
        out.append(_member("summaries.json", [_summary(s) for s in samples]))
        out.append(_member("header.json", {k: v for k, v in log.items() if k != "samples"}))
    return out


def write_eval(path: Path, members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 5, 29, 12, 38, 43)), data, compress_type=method)
    return path


def write_zstd_eval(path: Path, members: list[tuple[str, bytes]], declared: dict[str, int] | None = None) -> Path:
    """A zip with Zstandard members (method 93), as Inspect writes .eval logs; zipfile cannot write them before
    Python 3.14, so the headers are packed here (local header, data, central directory, end record).
    ``declared`` overrides a member's declared uncompressed size (a lying header)."""
    out, central = bytearray(), bytearray()
    for name, data in members:
        comp, crc, n = zstandard.ZstdCompressor().compress(data), zlib.crc32(data), name.encode()
        size = (declared or {}).get(name, len(data))
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 63, 0, 93, 0, 33, crc, len(comp), size, len(n), 0) + n + comp
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 63, 63, 0, 93, 0, 33, crc, len(comp), size, len(n),
                               0, 0, 0, 0, 0, offset) + n
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def _quarantine(batch) -> dict[str, str]:
    return dict(zip(batch.quarantine["locator"].to_pylist(), batch.quarantine["reason"].to_pylist()))


def _canonical(batch):
    return batch.responses.drop_columns(["source_id"]).to_pylist()


def test_same_log_as_json_and_as_eval_gives_identical_canonical_tables(tmp_path: Path):
    log = _log()
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / f"{NAME}.json").write_text(json.dumps(log, indent=2))
    write_eval(tmp_path / "eval" / f"{NAME}.eval", eval_members(log))
    assert [a.name for a, _ in discover(tmp_path / "eval").units] == ["inspect_eval"]
    [j] = read_target(tmp_path / "json").batches
    [e] = read_target(tmp_path / "eval").batches
    assert e.provenance.format == "inspect_eval" and e.provenance.n_read == j.provenance.n_read == 5
    assert _canonical(e) == _canonical(j) and len(_canonical(e)) == 4
    rows = _canonical(e)
    assert [(r["sample_id"], r["outcome"], r["source_label"]) for r in rows] == [
        ("rec1", "correct", "C"), ("rec2", "wrong", "I"), ("rec3", "abstained", "N"), ("rec1#epoch2", "wrong", "I")]
    assert rows[0]["grader"] == "inspect/gpqa_diamond/choice" and rows[0]["benchmark"] == "gpqa"
    assert rows[0]["model"] == "openai/gpt-4o-mini" and rows[0]["prompt"] == "Question rec1?"
    # the same sample is quarantined for the same reason; the locator names the archive member
    assert list(_quarantine(j).values()) == list(_quarantine(e).values())
    assert list(_quarantine(e)) == [f"{NAME}.eval!samples/rec4_epoch_1.json"]
    assert e.notes == []


def test_unfinished_log_reads_the_samples_present_with_a_note(tmp_path: Path):
    log = _log()
    log["samples"] = log["samples"][:2]
    f = write_eval(tmp_path / f"{NAME}.eval", eval_members(log, finished=False))
    [b] = read_target(f).batches
    assert b.provenance.n_read == 2 == b.responses.num_rows
    assert b.responses["sample_id"].to_pylist() == ["rec1", "rec2"]
    assert b.responses["grader"].to_pylist() == ["inspect/gpqa_diamond/choice"] * 2  # no results: sample's scorer
    assert any("did not finish" in n and "_journal/start.json" in n for n in b.notes)


def test_unfinished_log_without_samples_is_one_quarantined_record(tmp_path: Path):
    log = _log()
    log["samples"] = []
    [b] = read_target(write_eval(tmp_path / "x.eval", eval_members(log, finished=False))).batches
    assert b.provenance.n_read == 1 and b.responses.num_rows == 0
    assert _quarantine(b) == {"x.eval": "log has no samples (status 'started'; written with --no-log-samples?)"}


def test_a_sample_listed_in_the_summaries_but_missing_is_quarantined(tmp_path: Path):
    members = [m for m in eval_members(_log()) if m[0] != "samples/rec2_epoch_1.json"]
    [b] = read_target(write_eval(tmp_path / "x.eval", members)).batches
    q = _quarantine(b)
    assert q["x.eval!samples/rec2_epoch_1.json"] == "sample listed in summaries.json but its member is missing"
    assert b.provenance.n_read == 5 == b.responses.num_rows + b.quarantine.num_rows


def test_a_corrupt_member_is_quarantined_naming_file_and_member(tmp_path: Path):
    members = eval_members(_log())
    members = [(n, b'{"id": "rec2", "epoch": 1, "scores": {' if n == "samples/rec2_epoch_1.json" else d)
               for n, d in members]
    [b] = read_target(write_eval(tmp_path / "x.eval", members)).batches
    q = _quarantine(b)
    assert q["x.eval!samples/rec2_epoch_1.json"].startswith("invalid JSON")
    assert "rec2" not in b.responses["sample_id"].to_pylist() and b.responses.num_rows == 3
    assert b.provenance.n_read == 5


def test_a_member_whose_crc_is_wrong_is_quarantined_by_name(tmp_path: Path):
    f = write_eval(tmp_path / "x.eval", eval_members(_log()), method=zipfile.ZIP_STORED)
    data = bytearray(f.read_bytes())
    i = data.find(b"Question rec2?")
    data[i] = ord("q")  # one byte of the stored sample member: its CRC no longer matches
    f.write_bytes(bytes(data))
    [b] = read_target(f).batches
    (loc, reason), = [(k, v) for k, v in _quarantine(b).items() if "rec2" in k]
    assert loc == "x.eval!samples/rec2_epoch_1.json" and "Bad CRC-32" in reason
    assert b.responses.num_rows == 3 and b.provenance.n_read == 5


def test_a_header_that_cannot_be_read_quarantines_every_sample(tmp_path: Path):
    members = [(n, b"not json" if n in ("header.json", "_journal/start.json") else d)
               for n, d in eval_members(_log())]
    [b] = read_target(write_eval(tmp_path / "x.eval", members)).batches
    assert b.responses.num_rows == 0 and b.provenance.n_read == 5
    assert all(r.startswith("x.eval!header.json: invalid JSON") and "x.eval!_journal/start.json: invalid JSON" in r
               and "task and model are unknown" in r for r in _quarantine(b).values())


def test_a_damaged_header_falls_back_to_the_journal_start(tmp_path: Path):
    members = [(n, b"{" if n == "header.json" else d) for n, d in eval_members(_log())]
    [b] = read_target(write_eval(tmp_path / "x.eval", members)).batches
    assert b.responses.num_rows == 4 and b.provenance.n_read == 5
    assert b.responses["model"].to_pylist() == ["openai/gpt-4o-mini"] * 4
    assert any(n.startswith("x.eval!header.json: invalid JSON") and "_journal/start.json instead" in n
               for n in b.notes)


def test_zip_slip_member_is_refused_and_the_rest_read(tmp_path: Path):
    members = eval_members(_log()) + [_member("../samples/evil_epoch_1.json", _sample("evil", "A", "A", "C", "A"))]
    [b] = read_target(write_eval(tmp_path / "x.eval", members)).batches
    q = _quarantine(b)
    assert "zip slip" in q["x.eval!../samples/evil_epoch_1.json"]
    assert b.responses.num_rows == 4 and b.provenance.n_read == 6
    assert not (tmp_path.parent / "samples").exists()


def test_oversized_member_is_refused_by_the_archive_limits(tmp_path: Path):
    log = _log()
    log["samples"][1]["metadata"] = {"padding": "x" * 20_000}
    f = write_eval(tmp_path / "x.eval", eval_members(log))
    adapter = InspectEval(limits=ArchiveLimits(max_member_bytes=10_000))
    [b] = adapter.read(f, ReadContext(root=tmp_path))
    q = _quarantine(b)
    assert "member limit" in q["x.eval!samples/rec2_epoch_1.json"]
    assert b.responses["sample_id"].to_pylist() == ["rec1", "rec3", "rec1#epoch2"]
    assert b.provenance.n_read == 5


def test_a_zip_bomb_member_is_refused_before_decompression(tmp_path: Path):
    members = eval_members(_log()) + [("samples/bomb_epoch_1.json", b" " * (32 << 20))]
    f = write_eval(tmp_path / "x.eval", members)
    assert f.stat().st_size < 1 << 20
    [b] = read_target(f).batches
    assert "zip bomb" in _quarantine(b)["x.eval!samples/bomb_epoch_1.json"]


def test_a_relogged_sample_reads_the_last_entry_as_inspect_does(tmp_path: Path):
    log = _log()
    retry = copy.deepcopy(log["samples"][1])
    retry["scores"]["choice"]["value"] = "C"
    members = eval_members(log)
    members.insert(3, _member("samples/rec2_epoch_1.json", retry))  # the re-run, appended under the same name
    f = tmp_path / "x.eval"
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_eval(f, members)
    [b] = read_target(f).batches
    rec2 = [r for r in b.responses.to_pylist() if r["sample_id"] == "rec2"]
    assert [r["source_label"] for r in rec2] == ["C"]
    assert b.provenance.n_read == 5 and b.responses.num_rows == 4
    assert any("samples/rec2_epoch_1.json: 2 entries" in n for n in b.notes)


def test_early_layout_with_start_and_results_at_the_top_is_read(tmp_path: Path):
    log = _log()
    members = [_member("start.json", {k: log[k] for k in ("version", "eval", "plan")})]
    members += [_member(f"samples/{s['id']}_epoch_{s['epoch']}.json", s) for s in log["samples"]]
    members.append(_member("results.json", {k: log[k] for k in ("status", "stats", "results")}))
    [b] = read_target(write_eval(tmp_path / "x.eval", members)).batches
    assert b.responses.num_rows == 4 and b.notes == []


def test_not_a_zip_and_a_truncated_zip(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "plain.eval").write_text("just text")
    assert discover(tmp_path / "a").unrecognised == [tmp_path / "a" / "plain.eval"]
    bad = tmp_path / "broken.eval"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    [b] = read_target(bad).batches
    (loc, reason), = _quarantine(b).items()
    assert loc == "broken.eval" and "unreadable .eval log" in reason


def test_cli_ingest_reconciles_a_folder_of_eval_logs(tmp_path: Path):
    log = _log()
    write_eval(tmp_path / "logs" / f"{NAME}.eval", eval_members(log))
    other = _log()
    other["eval"]["model"] = "anthropic/claude-3-5-haiku"
    write_eval(tmp_path / "logs" / "2024-05-30T09-00-00_gpqa-diamond_def.eval", eval_members(other))
    sources = ingest(tmp_path / "x.duckdb", tmp_path / "logs")
    assert len(sources) == 2
    for row in sources.values():
        assert row["format"] == "inspect_eval"
        assert (row["n_read"], row["n_accepted"], row["n_quarantined"]) == (5, 4, 1)
    models = query(tmp_path / "x.duckdb", "select model, count(*) from responses group by 1 order by 1")
    assert models == [("anthropic/claude-3-5-haiku", 4), ("openai/gpt-4o-mini", 4)]


def test_zstandard_members_as_inspect_writes_them_read_like_deflate(tmp_path: Path):
    members = eval_members(_log())
    z = write_zstd_eval(tmp_path / "z" / "x.eval", members)
    with zipfile.ZipFile(z) as zf:
        assert {i.compress_type for i in zf.infolist()} == {93}
    [zb] = read_target(z).batches
    [db] = read_target(write_eval(tmp_path / "d" / "x.eval", members)).batches
    assert _canonical(zb) == _canonical(db) and zb.responses.num_rows == 4
    assert list(_quarantine(zb).values()) == list(_quarantine(db).values())


def test_damaged_zstandard_members_are_quarantined_by_name(tmp_path: Path):
    members = eval_members(_log()) + [("samples/bomb_epoch_1.json", b" " * (32 << 20))]
    f = write_zstd_eval(tmp_path / "x.eval", members, declared={"samples/rec3_epoch_1.json": 100})
    data = bytearray(f.read_bytes())
    i = data.find(b"samples/rec2_epoch_1.json") + len("samples/rec2_epoch_1.json") + 40
    data[i] ^= 0xFF  # inside rec2's compressed data
    f.write_bytes(bytes(data))
    [b] = read_target(f).batches
    q = _quarantine(b)
    assert q["x.eval!samples/rec2_epoch_1.json"].startswith("unreadable member: ")
    assert "decompressed past its declared 100 bytes" in q["x.eval!samples/rec3_epoch_1.json"]
    assert "zip bomb" in q["x.eval!samples/bomb_epoch_1.json"]
    assert b.responses["sample_id"].to_pylist() == ["rec1", "rec1#epoch2"]
    assert b.provenance.n_read == 6


def test_an_eval_log_inside_a_zip_reads_as_the_log_alone(tmp_path: Path):
    """Logs folders are often published zipped: the .eval member (itself a zip) is opened in place, through the
    outer archive's limits, and gives the rows and quarantines the .eval alone gives."""
    log = _log()
    alone = write_eval(tmp_path / "alone" / f"{NAME}.eval", eval_members(log))
    (tmp_path / "zipped").mkdir()
    with zipfile.ZipFile(tmp_path / "zipped" / "logs.zip", "w", zipfile.ZIP_STORED) as z:
        z.write(alone, f"logs/{NAME}.eval")
    [e] = read_target(alone.parent).batches
    batches = read_target(tmp_path / "zipped").batches
    assert [b.provenance.format for b in batches] == ["inspect_eval"]  # no "unrecognised member" batch
    [z] = batches
    assert _canonical(z) == _canonical(e) and len(_canonical(z)) == 4
    assert list(_quarantine(z).values()) == list(_quarantine(e).values())
    assert z.provenance.uri.endswith(f"logs.zip!/logs/{NAME}.eval") and z.provenance.n_read == 5
