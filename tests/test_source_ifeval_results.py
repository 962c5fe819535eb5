"""IFEval eval_results_{strict,loose}.jsonl with input data, on the real M-IFEval (en) slice."""

import json

from audit.ingest import read_target
from audit.sources import ReadContext, discover, get
from cli_ingest import ingest, jsonl_records, nonblank_lines, query

MODELS = {"gpt-4o-2024-08-06", "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4", "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4"}


def test_cli_ingest_accounts_for_every_line(shared_data, db):
    root = shared_data / "ifeval_mifeval"
    found = discover(root)
    assert {a.name for a, _ in found.units} == {"ifeval_results"} and len(found.units) == 6
    assert not found.unrecognised  # the input data is read through the results, not reported as unknown
    sources = ingest(db, root)
    assert len(sources) == 6
    for f in sorted(root.glob("evaluations/*/eval_results_*.jsonl")):
        row = sources[f"ifeval_results:ifeval_mifeval/{f.relative_to(root).as_posix()}"]
        assert row["n_read"] == nonblank_lines(f) == 200 == row["n_accepted"] + row["n_quarantined"]
        assert row["n_quarantined"] == 0
    assert {m for (m,) in query(db, "select distinct model from responses")} == MODELS
    assert dict(query(db, "select grader, count(*) from responses group by 1")) == {"ifeval/strict": 600,
                                                                                   "ifeval/loose": 600}


def test_prompt_level_accuracy_per_grader(shared_data, db):
    root = shared_data / "ifeval_mifeval"
    ingest(db, root)
    for folder in sorted((root / "evaluations").iterdir()):
        model = folder.name.removeprefix("en_input_response_data_").replace("__", "/")
        for mode in ("strict", "loose"):
            raw = jsonl_records(folder / f"eval_results_{mode}.jsonl")
            n_follow = sum(r["follow_all_instructions"] for r in raw)
            assert query(db, f"""select sum(original_score) from responses
                                 where model = '{model}' and grader = 'ifeval/{mode}'""") == [(n_follow,)]
    # known values: gpt-4o follows every instruction of 158 prompts strictly and 167 loosely (of 200)
    got = dict(query(db, "select grader, sum(original_score) from responses where model = 'gpt-4o-2024-08-06' group by 1"))
    assert got == {"ifeval/strict": 158.0, "ifeval/loose": 167.0}
    # loose checking never fails a prompt that strict checking passes (same responses, same sample ids)
    worse = query(db, """select count(*) from responses s join responses l using (model, sample_id)
                         where s.grader = 'ifeval/strict' and l.grader = 'ifeval/loose'
                         and s.original_score = 1 and l.original_score = 0""")
    assert worse == [(0,)]


def test_sample_ids_are_input_data_keys(shared_data):
    root = shared_data / "ifeval_mifeval"
    keys = {r["prompt"]: str(r["key"]) for r in jsonl_records(root / "data" / "en_input_data.jsonl")}
    f = root / "evaluations" / "en_input_response_data_gpt-4o-2024-08-06" / "eval_results_strict.jsonl"
    t = next(get("ifeval_results").read(f, ReadContext(root=root))).responses
    assert t["sample_id"].to_pylist() == [keys[r["prompt"]] for r in jsonl_records(f)]
    assert t["sample_id"][0].as_py() == "1000"
    assert set(t["benchmark"].to_pylist()) == {"ifeval"}


def test_unknown_prompt_and_contradiction_quarantined(shared_data, tmp_path):
    root = shared_data / "ifeval_mifeval"
    src = root / "evaluations" / "en_input_response_data_gpt-4o-2024-08-06" / "eval_results_loose.jsonl"
    lines = src.read_text("utf-8").splitlines()
    a, b = json.loads(lines[0]), json.loads(lines[1])
    a["prompt"] = "a prompt no input data holds"
    b["follow_all_instructions"] = not b["follow_all_instructions"]
    lines[0], lines[1] = json.dumps(a), json.dumps(b)
    # the M-IFEval layout, elsewhere: evaluations/<lang>_input_response_data_<MODEL>/ beside data/<lang>_input_data.jsonl
    folder = tmp_path / "evaluations" / "en_input_response_data_org__model"
    folder.mkdir(parents=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "en_input_data.jsonl").write_bytes((root / "data" / "en_input_data.jsonl").read_bytes())
    (folder / "eval_results_loose.jsonl").write_text("\n".join(lines) + "\n")
    res = read_target(tmp_path)
    assert not res.unrecognised
    batch = res.batches[0]
    assert batch.provenance.n_read == 200 == batch.responses.num_rows + batch.quarantine.num_rows
    assert batch.quarantine.num_rows == 2
    reasons = " | ".join(batch.quarantine["reason"].to_pylist())
    assert "not found in input data" in reasons and "contradicts" in reasons
    assert batch.responses["model"][0].as_py() == "org/model"


def test_without_input_data_ids_are_prompt_hashes(shared_data, tmp_path):
    src = shared_data / "ifeval_mifeval" / "evaluations" / "en_input_response_data_gpt-4o-2024-08-06"
    (tmp_path / "out").mkdir()
    for m in ("strict", "loose"):
        (tmp_path / "out" / f"eval_results_{m}.jsonl").write_bytes((src / f"eval_results_{m}.jsonl").read_bytes())
    res = read_target(tmp_path)
    strict, loose = sorted(res.batches, key=lambda b: b.provenance.source_id, reverse=True)
    assert strict.responses.num_rows == loose.responses.num_rows == 200
    assert strict.responses["sample_id"][0].as_py().startswith("sha256:")
    assert set(strict.responses["sample_id"].to_pylist()) == set(loose.responses["sample_id"].to_pylist())
    assert any("no input data" in n for n in strict.notes)
