import json
import math
from pathlib import Path

import pyarrow.compute as pc
import pytest

from audit.ingest import read_target


def test_real_truthfulqa_log_samples(shared_data):
    res = read_target(shared_data / "truthfulqa_multi")
    res.batches = [b for b in res.batches if b.provenance.format == "lm_eval_samples"]  # not the human labels
    assert len(res.batches) == 3
    models = sorted(b.responses["model"][0].as_py() for b in res.batches)
    assert models == ["google/gemma-2-27b-it", "meta-llama/Meta-Llama-3-70B-Instruct",
                      "meta-llama/Meta-Llama-3-8B-Instruct"]  # from results_*.json model_name
    for b in res.batches:
        t = b.responses
        assert b.provenance.n_read == 100 == t.num_rows
        assert set(t["benchmark"].to_pylist()) == {"truthfulqa_gen"}
        assert set(t["grader"].to_pylist()) == {"lm_eval/truthfulqa-multi_gen_en/bleu_acc"}
        src = [json.loads(l) for l in Path(b.provenance.uri.removeprefix("file://")).read_text().splitlines()]
        # the source's own metric decides correct vs wrong (before abstention detection)
        n_acc = sum(r["bleu_acc"] for r in src)
        correct = pc.sum(pc.equal(t["outcome"], "correct")).as_py()
        abstained = pc.sum(pc.equal(t["outcome"], "abstained")).as_py()
        assert correct <= n_acc <= correct + abstained
    # the human-label CSV beside the samples is read by its own adapter (truthfulqa_human_review): nothing is left
    assert res.unrecognised == []


def _mc_record(doc_id, lls, gold, greedy_idx=None):
    # lm-evaluation-harness --log_samples layout for an output_type: multiple_choice task
    choices = [f" choice {i}" for i in range(len(lls))]
    return {
        "doc_id": doc_id,
        "doc": {"question": f"q{doc_id}", "choices": choices, "answer": gold},
        "target": gold,
        "arguments": {f"gen_args_{i}": {"arg_0": f"Question: q{doc_id}\nAnswer:", "arg_1": c}
                      for i, c in enumerate(choices)},
        "resps": [[[str(v), "False"]] for v in lls],
        "filtered_resps": [[str(v), "False"] for v in lls],
        "filter": "none",
        "metrics": ["acc", "acc_norm"],
        "doc_hash": "x", "prompt_hash": "y", "target_hash": "z",
        "acc": 1.0 if max(range(len(lls)), key=lls.__getitem__) == gold else 0.0,
        "acc_norm": 0.0,
    }


def test_multiple_choice_confidence_is_the_softmax_of_the_choice_loglikelihoods(tmp_path: Path):
    d = tmp_path / "hf__tiny-model"
    d.mkdir()
    rows = [_mc_record(0, [-1.0, -2.0, -3.0, -4.0], 0), _mc_record(1, [-0.5, -0.5, -9.0, -9.0], 3)]
    (d / "samples_arc_challenge_2024-05-01T10-00-00.000000.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n")
    (d / "results_2024-05-01T10-00-00.000000.json").write_text(json.dumps({"model_name": "hf/tiny-model"}))
    b = read_target(d).batches[0]
    t = b.responses.to_pylist()
    z0 = sum(math.exp(-k) for k in (1, 2, 3, 4))
    assert t[0]["confidence"] == pytest.approx(math.exp(-1) / z0)
    assert t[0]["extracted_answer"] == "0" and t[0]["outcome"] == "correct"
    assert t[1]["confidence"] == pytest.approx(math.exp(-0.5) / (2 * math.exp(-0.5) + 2 * math.exp(-9)))
    assert t[1]["outcome"] == "wrong"
    assert t[0]["model"] == "hf/tiny-model" and t[0]["benchmark"] == "arc_challenge"
    assert t[0]["grader"] == "lm_eval/arc_challenge/acc"


def test_bad_lines_are_quarantined_with_their_line_numbers(tmp_path: Path):
    d = tmp_path / "org__m"
    d.mkdir()
    good = _mc_record(0, [-1.0, -2.0], 0)
    lines = [json.dumps(good), '{"doc_id": 1, "resps": [', json.dumps({"doc_id": 2, "filtered_resps": [["-1", "False"], ["-2", "False"]]}),
             json.dumps({**good, "doc_id": 3})]
    f = d / "samples_arc_easy_2024-05-01T10-00-00.000000.jsonl"
    f.write_bytes(("\n".join(lines) + "\n").encode() + b'{"doc_id": 4, "x": "\xff\xfe"}\n')
    b = read_target(f).batches[0]
    assert b.provenance.n_read == 5
    assert b.responses["sample_id"].to_pylist() == ["0", "3"]
    q = dict(zip(b.quarantine["locator"].to_pylist(), b.quarantine["reason"].to_pylist()))
    assert q[f"{f.name}:2"].startswith("invalid JSON")
    assert "metric" in q[f"{f.name}:3"]
    assert q[f"{f.name}:5"].startswith("not UTF-8")
