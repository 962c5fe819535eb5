"""Reading a target's units side by side (threads) must give exactly the serial read: same batches in the same
order, same rows, quarantines, reasons and validation results."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa

from audit.ingest import read_target
from audit.sources import ReadContext
from concurrent.futures import ThreadPoolExecutor

import flows.audit as flows_audit
from flows.audit import ingest_sources
from flows.shards import plan_target
from test_hostile_inputs import lm_record, write_lm


def _corpus(root: Path) -> Path:
    """Several lm-eval units, clean and hostile (each takes its own path through the reader)."""
    write_lm(root / "org__clean-a", [lm_record(i, response=r) for i, r in enumerate(["42", "I don't know", "7"])],
             model="org/clean-a")
    write_lm(root / "org__clean-b", [lm_record(i) for i in range(50)], model="org/clean-b")
    write_lm(root / "org__dupes", [lm_record(0), lm_record(1), lm_record(0, response="again"),
                                   lm_record(2, exact_match=-2.0)], model="org/dupes")
    write_lm(root / "org__bad-bytes", [lm_record(0), b'{"doc_id": 1, "resps": [["\xff"]], "filtered_resps": ["\xff"]}',
                                       lm_record(2)], model="org/bad-bytes")
    write_lm(root / "org__truncated", [lm_record(0), '{"doc_id": 1, "filtered_resps": ["4'], model="org/truncated")
    write_lm(root / "org__null-metric", [lm_record(0), lm_record(1, acc=None)], model="org/null-metric")
    write_lm(root / "org__bad-score", [lm_record(0), lm_record(1, exact_match=7.5)], model="org/bad-score")
    (root / "notes.txt").write_text("not an eval output")
    return root


def _drop_time(t: pa.Table | None) -> pa.Table | None:
    return None if t is None else t.drop_columns(["validated_at"])


def _assert_same(serial, threaded) -> None:
    assert threaded.unrecognised == serial.unrecognised and threaded.reasons == serial.reasons
    assert [b.provenance for b in threaded.batches] == [b.provenance for b in serial.batches]
    for s, t in zip(serial.batches, threaded.batches, strict=True):
        assert t.responses.equals(s.responses)
        assert t.quarantine.equals(s.quarantine)
        assert t.notes == s.notes
        assert (t.locators is None and s.locators is None) or t.locators.equals(s.locators)
        assert _drop_time(t.validation).equals(_drop_time(s.validation))


def test_threaded_read_equals_serial_read(tmp_path):
    root = _corpus(tmp_path / "corpus")
    serial = read_target(root, threads=1)
    threaded = read_target(root, threads=4)
    _assert_same(serial, threaded)
    # the corpus does exercise the quarantine paths (a test of two empty results would prove nothing)
    reasons = [r for b in serial.batches for r in b.quarantine["reason"].to_pylist()]
    assert len(serial.batches) == 7 and len(reasons) >= 5
    assert any("not UTF-8" in r for r in reasons) and any("duplicate" in r for r in reasons)
    assert any("original_score" in r for r in reasons)


def test_threaded_read_of_real_outputs_equals_serial_read(shared_data):
    root = shared_data / "truthfulqa_multi" / "results"
    _assert_same(read_target(root, threads=1), read_target(root, threads=3))


def test_engine_free_ingest_gives_the_same_catalog_as_the_one_call_read(tmp_path):
    """`bench-audit ingest` stages units on a thread pool: its catalog holds exactly the rows and quarantines the
    serial one-call read produces."""
    root = _corpus(tmp_path / "corpus")
    serial = read_target(root, threads=1)
    db = tmp_path / "c.duckdb"
    summary = ingest_sources([str(root)], str(db), full_refresh=True)
    assert summary["read"] == serial.n_read
    con = duckdb.connect(str(db), read_only=True)
    try:
        cols = "source_id, sample_id, outcome, response, abstention_reason"
        got = con.sql(f"SELECT {cols} FROM responses ORDER BY source_id, sample_id").fetchall()
        quarantined = con.sql("SELECT source_id, locator, reason FROM quarantine ORDER BY ALL").fetchall()
        vcols = "source_id, expectation, column_name, engine, success, element_count, unexpected_count, detail"
        results = con.sql(f"SELECT {vcols} FROM validation_results WHERE source_id IS NOT NULL ORDER BY ALL"
                          ).fetchall()
    finally:
        con.close()
    want = sorted((r["source_id"], r["sample_id"], r["outcome"], r["response"], r["abstention_reason"])
                  for b in serial.batches for r in b.responses.to_pylist())
    assert got == want
    assert quarantined == sorted((r["source_id"], r["locator"], r["reason"])
                                 for b in serial.batches for r in b.quarantine.to_pylist())
    assert len(quarantined) >= 5
    # Units staged together share one GE run: each unit's results (and failure samples) are still its own run's
    keep = ["source_id", "expectation", "column_name", "engine", "success", "element_count", "unexpected_count",
            "detail"]
    per_unit = sorted(tuple(r[k] for k in keep) for f in sorted(root.glob("*/samples_*.jsonl"))
                      for b in read_target(f, ReadContext(root=root)).batches for r in b.validation.to_pylist())
    assert results == per_unit
    assert any(r[1] == "expect_column_values_to_be_between" and r[7] == '{"unexpected_sample": [7.5]}'
               for r in results)
    shutil.rmtree(root)


class _CountingPool(ThreadPoolExecutor):
    """A real thread pool that counts what it was given."""
    submitted = 0

    def submit(self, *args, **kwargs):
        self.submitted += 1
        return super().submit(*args, **kwargs)


def test_engine_free_reads_stay_a_few_groups_ahead_of_the_writer(tmp_path, monkeypatch):
    """`bench-audit ingest` hands read units to the writer in memory: the pool must be given a group only when
    few are waiting, or a corpus read faster than it loads would sit in memory whole."""
    root = tmp_path / "corpus"
    for m in range(6):
        write_lm(root / f"org__m{m}", [lm_record(i) for i in range(20)], model=f"org/m{m}")
    shards, _ = plan_target("corpus", root, ReadContext(root=root))
    monkeypatch.setattr(flows_audit, "STAGE_GROUP_UNITS", 1)  # one unit per group, so groups are countable
    with _CountingPool(1) as pool:
        members = flows_audit._stage_pool(pool, 1)(shards, str(tmp_path / "staging"), [None] * len(shards))
        first = next(members).result()
        assert pool.submitted == 3  # the group being handed over, plus one per worker and one queued
        assert first["status"] == "staged" and [b.responses.num_rows for b in first["batches"]] == [20]
        rest = [m.result() for m in members]
        assert pool.submitted == 6 and len(rest) == 5
    assert all(len(r["batches"]) == 1 for r in rest)
    assert not (tmp_path / "staging").exists()  # in memory: nothing written


def test_unit_groups_are_even_and_a_multiple_of_the_workers(tmp_path, monkeypatch):
    """Groups of about equal bytes, as many as a multiple of the workers, so the workers run out of work together
    (a last group of one unit beside a full one left a core idle for most of a group's read); caps still hold."""
    root = tmp_path / "corpus"
    for m in range(20):
        write_lm(root / f"org__m{m:02d}", [lm_record(i) for i in range(30)], model=f"org/m{m:02d}")
    shards, _ = plan_target("corpus", root, ReadContext(root=root))
    unit = Path(shards[0].path).stat().st_size
    monkeypatch.setattr(flows_audit, "STAGE_GROUP_BYTES", int(unit * 4.5))  # at most 4 units' bytes a group
    for workers, count in ((1, 5), (2, 6), (3, 6), (8, 8), (40, 20)):
        groups = flows_audit._unit_groups(shards, workers)
        sizes = [len(g) for g in groups]
        assert len(groups) == count and max(sizes) - min(sizes) <= 1, (workers, sizes)
        assert [i for g in groups for i in g] == list(range(20))  # consecutive, each unit once
    monkeypatch.setattr(flows_audit, "STAGE_GROUP_UNITS", 2)
    assert max(len(g) for g in flows_audit._unit_groups(shards, 2)) == 2
    # A unit as large as a group (a folder unit counts as one) is read alone; its neighbours are grouped.
    monkeypatch.setattr(flows_audit, "STAGE_GROUP_UNITS", 64)
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"x" * int(unit * 5))
    mixed = shards[:6] + [dataclasses.replace(shards[0], path=str(big))] + shards[6:10]
    groups = flows_audit._unit_groups(mixed, 2)
    assert [6] in groups and [i for g in groups for i in g] == list(range(11))
    assert all(len(g) > 1 for g in groups if g != [6])
