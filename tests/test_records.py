import math

import pytest

from audit.records import RESPONSE_SCHEMA, Provenance, RecordBuilder, split_duplicates


def _prov(sid="s"):
    return Provenance(source_id=sid, format="test", uri="file:///x", sha256="0" * 64)


def test_builder_reconciles_accepted_and_quarantined():
    b = RecordBuilder("s", benchmark="gpqa", grader="g", model="m")
    b.add(sample_id=1, response="A", outcome="correct", original_score=1)
    b.add(sample_id=2, response="B", outcome="wrong", original_score=0)
    b.reject("f.jsonl:3", "{bad", "invalid JSON")
    batch = b.finish(_prov())
    assert batch.provenance.n_read == 3
    assert batch.responses.num_rows == 2 and batch.quarantine.num_rows == 1
    assert batch.responses.schema == RESPONSE_SCHEMA
    assert batch.responses["sample_id"].to_pylist() == ["1", "2"]


@pytest.mark.parametrize("bad", [dict(original_score=math.nan), dict(original_score=math.inf),
                                 dict(confidence=1.5), dict(outcome="maybe")])
def test_builder_refuses_values_outside_the_contract(bad):
    b = RecordBuilder("s", benchmark="gpqa", grader="g", model="m")
    with pytest.raises(ValueError):
        b.add(sample_id=1, **{"outcome": "wrong", **bad})
    assert b.n_read == 0  # nothing half-recorded


def test_duplicate_keys_keep_the_first_and_quarantine_the_rest():
    b = RecordBuilder("s", benchmark="gpqa", grader="g", model="m")
    for sid, resp in [(1, "first"), (2, "x"), (1, "second"), (1, "third")]:
        b.add(sample_id=sid, response=resp, outcome="wrong")
    batch = b.finish(_prov())
    assert batch.responses["response"].to_pylist() == ["first", "x"]
    assert batch.quarantine.num_rows == 2
    assert set(batch.quarantine["reason"].to_pylist()) == {
        "duplicate sample_id: an earlier record with the same key was kept"}
    assert batch.provenance.n_read == 4


def test_benchmark_names_are_canonicalised():
    b = RecordBuilder("s", grader="g", model="m")
    for i, name in enumerate(["leaderboard_gpqa_diamond", "truthfulqa-multi_gen_en", "MMLU-Pro", "my_new_bench"]):
        b.add(sample_id=i, benchmark=name, outcome="wrong")
    got = b.finish(_prov()).responses["benchmark"].to_pylist()
    assert got == ["gpqa", "truthfulqa_gen", "mmlu_pro", "my_new_bench"]


def test_split_duplicates_on_empty_table():
    kept, dup = split_duplicates(RESPONSE_SCHEMA.empty_table())
    assert kept.num_rows == 0 and dup.num_rows == 0
