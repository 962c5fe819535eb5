"""Every Eval Ever instance JSONL: import of the published schema, and export -> import round trip."""

import json
from pathlib import Path


from audit.cli import main
from audit.ingest import read_target
from audit.records import Provenance, RecordBuilder
from audit.sources import discover
from catalog.writer import CatalogWriter

COMPARE = ("benchmark", "grader", "model", "sample_id", "prompt", "response", "extracted_answer", "gold",
           "original_score", "source_label", "outcome", "abstention_reason", "confidence")


def _rows(batches):
    return sorted(tuple(r[c] for c in COMPARE) for b in batches for r in b.responses.to_pylist())


def _synthetic():
    b = RecordBuilder("syn", benchmark="gpqa", grader="g/x", model="acme/m")
    b.add(sample_id="s1", prompt="Q1", response="A", extracted_answer="A", gold="A", original_score=1,
          outcome="correct", confidence=0.8123456789)
    b.add(sample_id="s2", prompt="Q2", response="I'm not sure", gold="B", original_score=0, outcome="abstained",
          abstention_reason="detector:idk_en", source_label="not_attempted", confidence=0.1)
    b.add(sample_id="s3", response=None, gold=None, outcome="wrong")
    return b.finish(Provenance("syn", "test", "file:///syn", "0" * 64))


def test_export_then_import_round_trips(shared_data, tmp_path: Path, capsys):
    first = read_target(shared_data / "wildbench").batches + read_target(shared_data / "alpaca_eval").batches
    first.append(_synthetic())
    db = tmp_path / "c.duckdb"
    with CatalogWriter(db) as w:
        for b in first:
            w.load(b)
    out = tmp_path / "eee"
    assert main(["export", "--format", "eee", "--db", str(db), "--out", str(out)]) == 0
    assert "instance(s) written" in capsys.readouterr().out
    files = sorted(out.rglob("*.jsonl"))
    assert len(files) == 2 + 3 + 1  # one per (benchmark, model, grader)
    assert (out / "wildbench" / "google" / "gemma-2b-it").is_dir()
    # every line follows the published instance schema's required fields and types
    required = {"schema_version", "evaluation_id", "model_id", "evaluation_name", "sample_id", "interaction_type",
                "input", "answer_attribution", "evaluation"}
    n_lines = 0
    for f in files:
        for line in f.read_text().splitlines():
            r = json.loads(line)
            n_lines += 1
            assert required <= set(r) and r["interaction_type"] == "single_turn" and r["messages"] is None
            assert isinstance(r["evaluation"]["is_correct"], bool) and isinstance(r["input"]["reference"], list)
            assert all(isinstance(v, str) for v in (r["metadata"] or {}).values())
    assert n_lines == sum(b.responses.num_rows for b in first) == 2 * 150 + 3 * 150 + 3
    again = read_target(out)
    assert {a.name for a, _ in discover(out).units} == {"every_eval_ever"} and again.unrecognised == []
    assert sum(b.quarantine.num_rows for b in again.batches) == 0
    assert _rows(again.batches) == _rows(first)


def test_import_published_layout_multi_turn(tmp_path: Path):
    recs = [
        {"schema_version": "instance_level_eval_0.2.1", "evaluation_id": "e1", "model_id": "meta-llama/Llama-3.2-1B",
         "evaluation_name": "gsm8k", "sample_id": "gsm8k_0001", "sample_hash": "h", "interaction_type": "single_turn",
         "input": {"raw": "2+2?", "formatted": None, "reference": ["4"], "choices": None},
         "output": {"raw": ["The answer is 4"], "reasoning_trace": None}, "messages": None,
         "answer_attribution": [{"turn_idx": 0, "source": "output.raw", "extracted_value": "4",
                                 "extraction_method": "regex", "is_terminal": True}],
         "evaluation": {"score": 1.0, "is_correct": True}, "token_usage": None, "performance": None, "error": None,
         "metadata": {"subject": "arithmetic"}},
        {"schema_version": "instance_level_eval_0.2.1", "evaluation_id": "e1", "model_id": "meta-llama/Llama-3.2-1B",
         "evaluation_name": "gsm8k", "sample_id": "gsm8k_0002", "interaction_type": "agentic",
         "input": {"raw": "Compute 6*7 with the tool", "reference": ["42"]}, "output": None,
         "messages": [{"turn_idx": 0, "role": "user", "content": "Compute 6*7"},
                      {"turn_idx": 1, "role": "assistant", "content": None,
                       "tool_calls": [{"id": "c1", "name": "calc", "arguments": {"x": "6*7"}}]},
                      {"turn_idx": 2, "role": "tool", "content": "42", "tool_call_id": ["c1"]},
                      {"turn_idx": 3, "role": "assistant", "content": "41"}],
         "answer_attribution": [{"turn_idx": 3, "source": "messages[3].content", "extracted_value": "41",
                                 "extraction_method": "regex", "is_terminal": True}],
         "evaluation": {"score": 0.0, "is_correct": False, "num_turns": 4, "tool_calls_count": 1}},
        {"schema_version": "instance_level_eval_0.2.1", "evaluation_id": "e1", "model_id": "m",
         "evaluation_name": "gsm8k", "sample_id": "x", "interaction_type": "single_turn",
         "input": {"raw": "", "reference": []}, "evaluation": {"score": 1.0}},
    ]
    f = tmp_path / "gsm8k.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    [b] = read_target(f).batches
    assert b.provenance.n_read == 3 and b.quarantine.num_rows == 1
    assert "is_correct" in b.quarantine["reason"][0].as_py()
    t = b.responses.to_pylist()
    assert [(r["sample_id"], r["response"], r["extracted_answer"], r["gold"], r["outcome"]) for r in t] == [
        ("gsm8k_0001", "The answer is 4", "4", "4", "correct"), ("gsm8k_0002", "41", "41", "42", "wrong")]
    assert t[0]["grader"] == "eee/e1" and t[0]["model"] == "meta-llama/Llama-3.2-1B"
