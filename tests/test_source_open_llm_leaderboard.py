"""Open LLM Leaderboard v2 details, in the published parquet layout, loaded with `datasets` (offline)."""

import json
import math
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audit.ingest import read_target
from audit.sources import adapters

adapters()  # load every adapter before importing one module directly (a partial registry hides the rest)
from audit.sources.open_llm_leaderboard import load_from_hub, task_and_model
from audit.sources import discover


def _mc_row(doc_id: int, choices: list[str], lls: list[float], gold: int) -> dict:
    # lm-evaluation-harness log_samples row as the details datasets store it (numbers as strings in resps)
    lens = [len(c) for c in choices]
    norm = [v / n for v, n in zip(lls, lens)]
    pick = max(range(len(norm)), key=norm.__getitem__)
    return {
        "doc_id": doc_id,
        "doc": {"input": f"Question {doc_id}?", "target": choices[gold]},
        "target": choices[gold],
        "arguments": {f"gen_args_{i}": {"arg_0": f"Question {doc_id}?\nA:", "arg_1": " " + c}
                      for i, c in enumerate(choices)},
        "resps": [[[str(v), "False"]] for v in lls],
        "filtered_resps": [[str(v), "False"] for v in lls],
        "doc_hash": f"d{doc_id}", "prompt_hash": f"p{doc_id}", "target_hash": f"t{doc_id}",
        "acc_norm": 1.0 if pick == gold else 0.0,
    }


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_multiple_choice_details_keep_loglikelihoods_and_give_a_confidence(tmp_path: Path):
    repo = tmp_path / "acme__tiny-7b-details"
    rows = [_mc_row(0, ["Yes", "No"], [-2.0, -1.5], 0),  # acc_norm picks "Yes" (per-char), raw arg-max is "No"
            _mc_row(1, ["True", "False"], [-0.1, -3.0], 1)]
    bad = dict(rows[0], doc_id=2)
    del bad["acc_norm"]
    rows.append(bad)
    _write(repo / "leaderboard_bbh_navigate" / "samples_leaderboard_bbh_navigate_2024-06-26T17-47-58.478584.parquet",
               rows)
    assert [a.name for a, _ in discover(repo).units] == ["open_llm_leaderboard"]
    [b] = read_target(repo).batches
    assert b.provenance.n_read == 3 == b.responses.num_rows + b.quarantine.num_rows
    assert "no metric column" in b.quarantine["reason"][0].as_py()
    r0, r1 = b.responses.to_pylist()
    assert r0["model"] == "acme/tiny-7b" and r0["benchmark"] == "bbh"  # canonicalised via the registry
    assert r0["grader"] == "open_llm_leaderboard/leaderboard_bbh_navigate/acc_norm"
    assert json.loads(r0["response"]) == [-2.0, -1.5]  # per-choice log-likelihoods are kept
    assert r0["extracted_answer"] == "0" and r0["outcome"] == "correct"
    n = [-2.0 / 3, -1.5 / 2]
    assert r0["confidence"] == pytest.approx(math.exp(n[0]) / (math.exp(n[0]) + math.exp(n[1])))
    assert r1["extracted_answer"] == "0" and r1["outcome"] == "wrong" and r1["gold"] == "False"
    assert r1["confidence"] == pytest.approx(math.exp(-0.1 / 4) / (math.exp(-0.1 / 4) + math.exp(-3.0 / 5)))
    assert b.provenance.sha256 and b.provenance.uri.endswith(".parquet")


def test_generation_config_split_layout(tmp_path: Path):
    repo = tmp_path / "acme__tiny-7b-details"
    rows = [{"doc_id": i, "doc": {"problem": f"p{i}", "solution": "5"}, "target": "5",
             "arguments": {"gen_args_0": {"arg_0": f"Problem: p{i}", "arg_1": "{'until': ['Problem:']}"}},
             "resps": [[ans]], "filtered_resps": [ans], "doc_hash": "h", "prompt_hash": "h", "target_hash": "h",
             "exact_match": float(ans == "5")} for i, ans in enumerate(["5", "7", "I don't know."])]
    f = _write(repo / "acme__tiny-7b__leaderboard_math_algebra_hard" / "latest" / "0000.parquet", rows)
    assert task_and_model(f) == ("leaderboard_math_algebra_hard", "acme/tiny-7b")
    [b] = read_target(repo).batches
    t = b.responses.to_pylist()
    assert {r["benchmark"] for r in t} == {"math_l5"}
    assert [(r["sample_id"], r["outcome"], r["confidence"]) for r in t] == [
        ("0", "correct", None), ("1", "wrong", None), ("2", "abstained", None)]  # abstention detected downstream
    assert t[0]["prompt"] == "p0" and t[0]["grader"].endswith("/exact_match")


def test_hub_path_is_offline_in_tests():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    with pytest.raises(ConnectionError, match="OfflineModeIsEnabled"):
        load_from_hub("open-llm-leaderboard/acme__tiny-7b-details", "acme__tiny-7b__leaderboard_bbh_navigate")
