"""Zip members are read in place, with limits: real MMLU-Pro outputs zipped as published, and hostile archives
written by the tests (zip slip names, a zip bomb, oversized members, duplicates, a corrupt archive)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from audit.ingest import read_target
from audit.sources.archive import ArchiveLimits, SafeZip

MMLU = "model_outputs_Mistral-7B-Instruct-v0.2_5shots.json"


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, compress_type=method)
    return path


def _quarantine(result) -> dict[str, str]:
    return {loc: reason for b in result.batches for loc, reason in
            zip(b.quarantine["locator"].to_pylist(), b.quarantine["reason"].to_pylist())}


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.fixture
def mmlu_json(shared_data) -> bytes:
    return (shared_data / "mmlu_pro_tiger" / MMLU).read_bytes()


def test_published_zip_reads_like_the_unpacked_file(tmp_path, shared_data, mmlu_json):
    z = _zip(tmp_path / "model_outputs_Mistral-7B-Instruct-v0.2_5shots.zip", {MMLU: mmlu_json})
    before = _files(tmp_path)
    zipped = read_target(z)
    plain = read_target(shared_data / "mmlu_pro_tiger" / MMLU)
    assert _files(tmp_path) == before  # nothing unpacked
    (zb,), (pb,) = zipped.batches, plain.batches
    assert zb.responses.num_rows == pb.responses.num_rows == 308
    cols = ["sample_id", "model", "outcome", "extracted_answer", "gold", "response"]
    assert zb.responses.select(cols).to_pylist() == pb.responses.select(cols).to_pylist()
    assert zb.provenance.uri.endswith(f".zip!/{MMLU}") and zb.provenance.sha256 == pb.provenance.sha256
    assert zb.provenance.source_id.endswith(f".zip!/{MMLU}")


def test_zip_slip_and_absolute_names_are_quarantined_and_the_rest_is_read(tmp_path, mmlu_json):
    (tmp_path / "in").mkdir()
    z = _zip(tmp_path / "in" / "evil.zip", {
        "../escape.json": b"[]", "/etc/abs.json": b"[]", "a/../../up.json": b"[]", "C:/win.json": b"[]",
        MMLU: mmlu_json,
    })
    result = read_target(z)
    q = _quarantine(result)
    assert "zip slip" in q["evil.zip!../escape.json"] and "zip slip" in q["evil.zip!a/../../up.json"]
    assert "absolute" in q["evil.zip!/etc/abs.json"] and "absolute" in q["evil.zip!C:/win.json"]
    assert sum(b.responses.num_rows for b in result.batches) == 308
    assert _files(tmp_path) == {tmp_path / "in", z}  # nothing written anywhere
    assert sum(b.provenance.n_read for b in result.batches) == 308 + 4


def test_zip_bomb_is_refused_before_decompression(tmp_path):
    z = _zip(tmp_path / "bomb.zip", {"bomb.json": b"\0" * (64 << 20)})  # 64 MiB of zeros -> ~64 KiB
    assert z.stat().st_size < 1 << 20
    result = read_target(z)
    (reason,) = _quarantine(result).values()
    assert "compression-ratio limit" in reason and "zip bomb" in reason
    assert sum(b.responses.num_rows for b in result.batches) == 0


def test_member_and_total_size_limits(tmp_path, monkeypatch, mmlu_json):
    z = _zip(tmp_path / "two.zip", {"a/" + MMLU: mmlu_json, "b/" + MMLU: mmlu_json})
    monkeypatch.setenv("BENCH_AUDIT_ZIP_MAX_TOTAL_BYTES", str(len(mmlu_json) + 10))
    q = _quarantine(result := read_target(z))
    assert list(q) == [f"two.zip!b/{MMLU}"] and "uncompressed total" in q[f"two.zip!b/{MMLU}"]
    assert sum(b.responses.num_rows for b in result.batches) == 308
    monkeypatch.setenv("BENCH_AUDIT_ZIP_MAX_MEMBER_BYTES", "1000")
    q = _quarantine(read_target(z))
    assert len(q) == 2 and all("member limit" in r for r in q.values())


def test_duplicate_members_unrecognised_members_and_odd_methods(tmp_path, mmlu_json):
    path = tmp_path / "odd.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(MMLU, mmlu_json)
        with pytest.warns(UserWarning):
            zf.writestr(MMLU, b"[]")  # a second entry with the same name
        zf.writestr("notes.txt", b"hello")
        zf.writestr(zipfile.ZipInfo("packed.json"), b"[]", compress_type=zipfile.ZIP_BZIP2)
    result = read_target(path)
    q = _quarantine(result)
    assert "more than once" in q[f"odd.zip!{MMLU}"]
    assert "no adapter recognises" in q["odd.zip!notes.txt"]
    assert "compression method 12" in q["odd.zip!packed.json"]
    assert sum(b.responses.num_rows for b in result.batches) == 308
    for b in result.batches:
        b.check_reconciled()


def test_corrupt_archive_is_a_quarantine_row_not_a_crash(tmp_path):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    (row,) = _quarantine(read_target(bad)).items()
    assert row[0] == "broken.zip" and "unreadable zip archive" in row[1]


def test_a_member_whose_crc_is_wrong_is_reported_by_name(tmp_path, mmlu_json):
    path = _zip(tmp_path / "crc.zip", {MMLU: mmlu_json}, method=zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    i = data.find(b'"question_id"')
    data[i + 1] = ord("Q")  # flip one byte of the stored member: the CRC no longer matches
    path.write_bytes(bytes(data))
    result = read_target(path)
    q = _quarantine(result)
    assert q == {f"crc.zip!{MMLU}": f"adapter mmlu_pro_official failed on this archive member: BadZipFile: "
                                   f"Bad CRC-32 for file {MMLU!r}"}
    for b in result.batches:
        b.check_reconciled()


def test_archive_path_behaves_like_a_read_only_path(tmp_path):
    z = _zip(tmp_path / "t.zip", {"d/x.jsonl": b'{"a": 1}\n', "d/e/y.json": b"[]", "top.txt": b"t"})
    with SafeZip(z, ArchiveLimits()) as a:
        root = a.root
        assert [p.name for p in root.iterdir()] == ["d", "top.txt"]
        d = root / "d"
        assert d.is_dir() and not d.is_file() and sorted(p.name for p in d.iterdir()) == ["e", "x.jsonl"]
        x = d / "x.jsonl"
        assert x.read_text() == '{"a": 1}\n' and x.suffix == ".jsonl" and x.stem == "x" and x.parent == d
        assert x.stat().st_size == 9 and x.relative_to(root).as_posix() == "d/x.jsonl"
        assert [p.name for p in root.rglob("*.json")] == ["y.json"]
        assert [p.name for p in d.glob("*.jsonl")] == ["x.jsonl"]
        with pytest.raises(PermissionError):
            x.open("w")
        assert not (root / "missing").exists()


FOLDERS = ["mmlu_pro_tiger", "simple_evals_ru", "simpleqa_tavily", "truthfulqa_multi", "ifeval_mifeval", "zeroeval",
           "swebench_leaderboard", "wildbench", "alpaca_eval"]


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_shared_source_reads_the_same_zipped(folder, shared_data, tmp_path):
    """Whatever adapters the build has, a source zipped as a whole yields the same rows as the folder, and each
    file the folder walk leaves unrecognised is a quarantined member of the zip."""
    src = shared_data / folder
    z = tmp_path / f"{folder}.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(src).as_posix())
    plain, zipped = read_target(src), read_target(z)
    key = lambda r: sorted((b.provenance.format, b.responses.num_rows, b.quarantine.num_rows)  # noqa: E731
                           for b in r.batches if b.provenance.format != "zip_archive")
    assert key(zipped) == key(plain)
    unrec = sorted(Path(p).relative_to(src).as_posix() for p in plain.unrecognised)
    members = sorted(loc.split("!", 1)[1] for loc, reason in _quarantine(zipped).items()
                     if "no adapter recognises" in reason)
    assert members == unrec and zipped.unrecognised == []
    for b in zipped.batches:
        b.check_reconciled()
