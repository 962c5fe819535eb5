"""lighteval --save-details parquet, written in the published column layouts."""

import json
import math
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audit.ingest import read_target
from audit.sources import discover

DATE = "2025-02-03T10-11-12.123456"


def _old_row(example, preds, metrics, choices=(), gold_index=(), gold=()):
    # lighteval Detail dataclass, columns sorted as Dataset.select_columns(sorted(...)) writes them
    return {"choices": list(choices), "cont_tokens": [], "example": example, "full_prompt": f"Q: {example}\nA:",
            "gold": list(gold), "gold_index": list(gold_index), "input_tokens": [], "instruction": "",
            "metrics": metrics, "num_asked_few_shots": 5, "num_effective_few_shots": 5, "padded": [0],
            "pred_logits": [], "prediction_logits": [], "predictions": preds, "specifics": {"k": "v"},
            "truncated": [0]}


def test_generative_and_multiple_choice_details(tmp_path: Path):
    run = tmp_path / "details" / "acme" / "m-1" / DATE
    run.mkdir(parents=True)
    gen = [_old_row("2+3?", ["5"], {"em": 1.0, "qem": 1.0}, gold=["5"]),
           _old_row("7*6?", ["41"], {"em": 0.0, "qem": 0.0}, gold=["42"]),
           _old_row("hard?", ["I don't know"], {"em": 0.0, "qem": 0.0}, gold=["x"]),
           _old_row("no metric", ["x"], {"note": None}, gold=["y"])]
    f1 = run / f"details_lighteval|gsm8k|5_{DATE}.parquet"
    pq.write_table(pa.Table.from_pylist(gen), f1)
    mc = [_old_row("Sky colour?", [[-0.2, 1.0], [-2.0, 0.0], [-3.0, 0.0]], {"acc": 1.0, "acc_norm": 1.0},
                   choices=["blue", "green", "red"], gold_index=[0]),
          _old_row("Grass colour?", [[-0.5, 1.0], [-0.7, 0.0], [-4.0, 0.0]], {"acc": 0.0, "acc_norm": 0.0},
                   choices=["blue", "green", "red"], gold_index=[1])]
    f2 = run / f"details_leaderboard|arc:challenge|25_{DATE}.parquet"
    pq.write_table(pa.Table.from_pylist(mc), f2)
    assert {a.name for a, _ in discover(tmp_path).units} == {"lighteval_details"}
    res = read_target(tmp_path)
    by = {Path(unquote(b.provenance.uri)).name: b for b in res.batches}
    g = by[f1.name]
    assert g.provenance.n_read == 4 == g.responses.num_rows + g.quarantine.num_rows
    assert "metric" in g.quarantine["reason"][0].as_py()
    rows = g.responses.to_pylist()
    assert [(r["response"], r["gold"], r["outcome"]) for r in rows] == [
        ("5", "5", "correct"), ("41", "42", "wrong"), ("I don't know", "x", "abstained")]
    assert rows[0]["model"] == "acme/m-1" and rows[0]["benchmark"] == "gsm8k"
    assert rows[0]["grader"] == "lighteval/lighteval|gsm8k|5/em"
    m = by[f2.name].responses.to_pylist()
    assert m[0]["benchmark"] == "arc_challenge" and m[0]["grader"].endswith("/acc_norm")
    assert json.loads(m[0]["response"]) == [-0.2, -2.0, -3.0] and m[0]["extracted_answer"] == "0"
    z = sum(math.exp(v) for v in (-0.2, -2.0, -3.0))
    assert m[0]["confidence"] == pytest.approx(math.exp(-0.2) / z) and m[0]["gold"] == "blue"
    assert m[1]["outcome"] == "wrong" and m[1]["gold"] == "green"
    # sample ids are content hashes: the same document gets the same id in another model's file
    assert len({r["sample_id"] for r in rows}) == 3


def test_newer_doc_model_response_layout(tmp_path: Path):
    run = tmp_path / "details" / "acme" / "m-2" / DATE
    run.mkdir(parents=True)
    rows = [{"doc": {"query": "Capital of France?", "choices": ["Paris", "Rome"], "gold_index": 0, "id": "q1",
                     "task_name": "lighteval|capitals|0"},
             "model_response": {"text": [], "logprobs": [-0.1, -2.5], "input_tokens": [], "output_tokens": []},
             "metric": {"acc": 1.0}},
            {"doc": {"query": "Spell cat", "choices": ["cat"], "gold_index": 0, "id": "q2",
                     "task_name": "lighteval|capitals|0"},
             "model_response": {"text": ["dog"], "logprobs": [], "input_tokens": [], "output_tokens": []},
             "metric": {"acc": 0.0}}]
    pq.write_table(pa.Table.from_pylist(rows), run / f"details_lighteval|capitals|0_{DATE}.parquet")
    [b] = read_target(tmp_path).batches
    t = b.responses.to_pylist()
    assert [(r["sample_id"], r["extracted_answer"], r["outcome"]) for r in t] == [("q1", "0", "correct"),
                                                                                 ("q2", "dog", "wrong")]
    assert t[0]["confidence"] == pytest.approx(1 / (1 + math.exp(-2.4)))
