"""HELM raw run folders, written in the exact published layout (run_spec / scenario_state / per_instance_stats)."""

import json
from pathlib import Path

from audit.ingest import read_target
from audit.sources import discover

RUN = "mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt2"


def _stat(name, value, perturbation=None):
    n = {"name": name, "split": "test"}
    if perturbation:
        n["perturbation"] = perturbation
    return {"name": n, "count": 1, "sum": value, "sum_squared": value * value, "min": value, "max": value,
            "mean": value, "variance": 0.0, "stddev": 0.0}


def _state(iid, text, letter, correct_idx, perturbation=None):
    refs = [{"output": {"text": t}, "tags": ["correct"] if i == correct_idx else []}
            for i, t in enumerate(["bone", "muscle", "nerve", "skin"])]
    inst = {"input": {"text": text}, "references": refs, "split": "test", "id": iid}
    if perturbation:
        inst["perturbation"] = perturbation
    return {"instance": inst, "train_trial_index": 0, "output_mapping": {"A": "bone", "B": "muscle", "C": "nerve", "D": "skin"},
            "request": {"model_deployment": "openai/gpt2", "model": "openai/gpt2", "prompt": text + "\nAnswer:",
                        "temperature": 0.0, "num_completions": 1, "max_tokens": 1},
            "result": {"success": True, "embedding": [], "completions": [{"text": f" {letter}", "logprob": -0.3,
                                                                         "tokens": [{"text": f" {letter}", "logprob": -0.3}]}],
                       "cached": True}, "num_train_instances": 5, "prompt_truncated": False}


def test_helm_run_folder(tmp_path: Path):
    d = tmp_path / "benchmark_output" / "runs" / "v1" / RUN
    d.mkdir(parents=True)
    typo = {"name": "typos", "robustness": True, "fairness": False, "computed_on": "perturbed", "prob": 0.1}
    (d / "run_spec.json").write_text(json.dumps({
        "name": RUN, "scenario_spec": {"class_name": "helm.benchmark.scenarios.mmlu_scenario.MMLUScenario",
                                       "args": {"subject": "anatomy"}},
        "adapter_spec": {"method": "multiple_choice_joint", "model": "openai/gpt2", "model_deployment": "openai/gpt2",
                         "max_train_instances": 5}, "metric_specs": [], "groups": ["mmlu"]}, indent=2))
    (d / "scenario_state.json").write_text(json.dumps({"adapter_spec": {}, "request_states": [
        _state("id1", "Which tissue?", "A", 0), _state("id2", "Which organ?", "C", 1),
        _state("id1", "Whcih tissue?", "B", 0, perturbation=typo)]}, indent=2))
    (d / "per_instance_stats.json").write_text(json.dumps([
        {"instance_id": "id1", "train_trial_index": 0,
         "stats": [_stat("num_prompt_tokens", 40.0), _stat("exact_match", 1.0), _stat("quasi_exact_match", 1.0)]},
        {"instance_id": "id2", "train_trial_index": 0, "stats": [_stat("exact_match", 0.0)]},
        {"instance_id": "id1", "train_trial_index": 0, "perturbation": typo,
         "stats": [_stat("exact_match", 0.0, perturbation=typo)]},
        {"instance_id": "id3", "train_trial_index": 0, "stats": [_stat("num_prompt_tokens", 3.0)]},
    ], indent=2))
    (d / "stats.json").write_text("[]")
    assert [a.name for a, _ in discover(tmp_path).units] == ["helm_run"]
    [b] = read_target(tmp_path).batches
    assert b.provenance.n_read == 4 == b.responses.num_rows + b.quarantine.num_rows
    assert "no main metric" in b.quarantine["reason"][0].as_py()
    rows = b.responses.to_pylist()
    assert [(r["sample_id"], r["extracted_answer"], r["gold"], r["outcome"]) for r in rows] == [
        ("id1", "bone", "bone", "correct"), ("id2", "nerve", "muscle", "wrong"), ("id1/typos", "muscle", "bone", "wrong")]
    assert rows[0]["model"] == "openai/gpt2" and rows[0]["benchmark"] == "mmlu" and rows[0]["grader"] == "helm/exact_match"
    assert rows[0]["prompt"] == "Which tissue?" and rows[0]["response"] == " A" and rows[2]["source_label"] == "typos"


SEPARATE = "mmlu:subject=anatomy,method=multiple_choice_separate_original,model=openai_gpt2"


def _separate_states(iid: str, text: str, correct_idx: int, modes=("original",)) -> list[dict]:
    """multiple_choice_separate_*: one request state per (choice, mode), each scoring the prompt with that choice
    appended (echo_prompt, max_tokens 0): the completion text is the echoed prompt, not an answer."""
    refs = [{"output": {"text": t}, "tags": ["correct"] if i == correct_idx else []}
            for i, t in enumerate(["bone", "muscle", "nerve", "skin"])]
    inst = {"input": {"text": text}, "references": refs, "split": "test", "id": iid}
    out = []
    for i, ref in enumerate(refs):
        for mode in modes:
            prompt = f"{text} {ref['output']['text']}" if mode == "original" else f"Answer: {ref['output']['text']}"
            out.append({"instance": inst, "reference_index": i, "request_mode": mode, "train_trial_index": 0,
                        "output_mapping": None,
                        "request": {"model_deployment": "openai/gpt2", "model": "openai/gpt2", "prompt": prompt,
                                    "temperature": 0.0, "num_completions": 1, "max_tokens": 0, "echo_prompt": True},
                        "result": {"success": True, "embedding": [], "cached": True, "completions": [
                            {"text": prompt, "logprob": -4.0 - i, "tokens": [{"text": prompt, "logprob": -4.0 - i}]}]},
                        "num_train_instances": 0, "prompt_truncated": False})
    return out


def test_separate_multiple_choice_takes_helms_predicted_reference(tmp_path: Path):
    d = tmp_path / "runs" / "v1" / SEPARATE
    d.mkdir(parents=True)
    (d / "run_spec.json").write_text(json.dumps({
        "name": SEPARATE, "adapter_spec": {"method": "multiple_choice_separate_original", "model": "openai/gpt2"},
        "metric_specs": [], "groups": ["mmlu"]}))
    (d / "scenario_state.json").write_text(json.dumps({"adapter_spec": {}, "request_states":
        _separate_states("id1", "Which tissue?", 0) + _separate_states("id2", "Which organ?", 1)}))
    (d / "per_instance_stats.json").write_text(json.dumps([
        {"instance_id": "id1", "train_trial_index": 0, "stats": [
            _stat("num_references", 4.0), _stat("max_prob", 0.61), _stat("exact_match", 1.0),
            _stat("predicted_index", 0.0)]},
        {"instance_id": "id2", "train_trial_index": 0, "stats": [
            _stat("max_prob", 0.4), _stat("exact_match", 0.0), _stat("predicted_index", 2.0)]},
        {"instance_id": "id3", "train_trial_index": 0, "stats": [_stat("exact_match", 0.0)]},  # no request state
    ]))
    [b] = read_target(tmp_path).batches
    assert b.provenance.n_read == 3 == b.responses.num_rows
    rows = b.responses.to_pylist()
    assert [(r["sample_id"], r["response"], r["extracted_answer"], r["gold"], r["confidence"], r["outcome"])
            for r in rows] == [("id1", "bone", "bone", "bone", 0.61, "correct"),
                               ("id2", "nerve", "nerve", "muscle", 0.4, "wrong"),
                               ("id3", None, None, None, None, "wrong")]
    assert rows[0]["prompt"] == "Which tissue?"
