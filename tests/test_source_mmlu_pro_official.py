import json
from pathlib import Path

import pyarrow.compute as pc

from audit.ingest import read_target
from audit.sources import discover


def test_detected_and_read_from_real_files(shared_data):
    root = shared_data / "mmlu_pro_tiger"
    found = discover(root)
    assert {a.name for a, _ in found.units} == {"mmlu_pro_official"}
    assert len(found.units) == 4 and not found.unrecognised
    res = read_target(root)
    by_model = {b.responses["model"][0].as_py(): b for b in res.batches}
    assert set(by_model) == {"Meta-Llama-3-70B", "Meta-Llama-3_1-8B-Instruct", "Mistral-7B-Instruct-v0.2",
                             "gemini-1.5-flash-002"}
    for model, batch in by_model.items():
        raw = json.loads((root / f"model_outputs_{model}_5shots.json").read_text())
        assert batch.provenance.n_read == len(raw) == batch.responses.num_rows == 308
        # accuracy at t=0 is exactly what pred == answer gives on the file
        expected = sum(r["pred"] == r["answer"] for r in raw)
        assert pc.sum(pc.equal(batch.responses["outcome"], "correct")).as_py() == expected
        assert batch.provenance.sha256 and batch.provenance.uri.startswith("file://")
        assert set(batch.responses["benchmark"].to_pylist()) == {"mmlu_pro"}
        assert set(batch.responses["grader"].to_pylist()) == {"mmlu_pro_official"}


def test_variant_text_field_and_null_pred(shared_data):
    res = read_target(shared_data / "mmlu_pro_tiger" / "model_outputs_gemini-1.5-flash-002_5shots.json")
    t = res.batches[0].responses
    assert pc.all(pc.is_valid(t["response"])).as_py()  # read from `model_outputs`, the variant field name
    nulls = t.filter(pc.equal(t["source_label"], "pred=null"))
    assert nulls.num_rows == 3  # the file has three records whose pred is null
    assert set(nulls["outcome"].to_pylist()) <= {"wrong", "abstained"}
    assert nulls["original_score"].null_count == 3


def test_malformed_record_is_quarantined_and_the_rest_ingested(shared_data, tmp_path: Path):
    raw = json.loads((shared_data / "mmlu_pro_tiger" / "model_outputs_Mistral-7B-Instruct-v0.2_5shots.json").read_text())
    del raw[5]["answer"]
    raw[7] = "not an object"
    f = tmp_path / "model_outputs_Mistral-7B-Instruct-v0.2_5shots.json"
    f.write_text(json.dumps(raw))
    b = read_target(f).batches[0]
    assert b.provenance.n_read == 308 == b.responses.num_rows + b.quarantine.num_rows
    assert b.quarantine.num_rows == 2
    reasons = dict(zip(b.quarantine["locator"].to_pylist(), b.quarantine["reason"].to_pylist()))
    assert "answer" in reasons[f"{f.name}[5]"]
    assert "expected an object" in reasons[f"{f.name}[7]"]


def test_truncated_array_keeps_the_records_before_the_cut(shared_data, tmp_path: Path):
    text = (shared_data / "mmlu_pro_tiger" / "model_outputs_Meta-Llama-3-70B_5shots.json").read_text()
    cut = text[: len(text) // 2]
    f = tmp_path / "model_outputs_Meta-Llama-3-70B_5shots.json"
    f.write_text(cut)
    b = read_target(f).batches[0]
    assert 100 < b.responses.num_rows < 308
    assert b.quarantine.num_rows == 1 and "truncated" in b.quarantine["reason"][0].as_py()
    assert b.provenance.n_read == b.responses.num_rows + 1
