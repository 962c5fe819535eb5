"""SWE-bench: leaderboards.json per-instance details (real slice) and the SWE-bench/experiments results.json layout
(small files written in that exact layout: evaluation/<split>/<date_system>/results/results.json)."""

import json
from pathlib import Path

import pyarrow.compute as pc

from audit.ingest import read_target
from audit.sources import discover
from cli_ingest import ingest, query


def test_leaderboard_cli_ingest_accounts_for_every_instance(shared_data, db):
    root = shared_data / "swebench_leaderboard"
    doc = json.loads((root / "leaderboards.json").read_text("utf-8"))
    entries = [(lb["name"], e) for lb in doc["leaderboards"] for e in lb["results"]]
    sources = ingest(db, root)
    assert len(sources) == len(entries) == 10
    for board, e in entries:
        row = sources[f"swebench_leaderboard:swebench_leaderboard/leaderboards.json#{board}/{e['folder']}"]
        assert row["n_read"] == len(e["per_instance_details"]) == 500 == row["n_accepted"] + row["n_quarantined"]
        assert row["uri"].endswith(f"leaderboards.json#{board}/{e['folder']}")
        n_resolved = sum(d["resolved"] is True for d in e["per_instance_details"].values())
        assert query(db, f"select sum(original_score)::int from responses where model = '{e['folder']}'") == [(n_resolved,)]
    assert query(db, "select distinct benchmark, grader from responses") == [("swebench_verified", "swebench_harness")]
    # known value: Claude 4.5 Opus resolves 372 of 500 (74.4%, its headline)
    assert query(db, """select avg(original_score) from responses
                        where model = '20251124_mini-v1.16.0_claude-opus-4-5-20251101'""") == [(0.744,)]


def test_headline_that_disagrees_with_its_instances_is_reported(shared_data):
    res = read_target(shared_data / "swebench_leaderboard")
    notes = [n for b in res.batches for n in b.notes]
    assert len(notes) == 1
    assert "claude-3-7-sonnet" in notes[0] and "52.8%" in notes[0] and "51/500" in notes[0]


def test_leaderboard_traps(tmp_path):
    details = '{"a__a-1": {"resolved": true}, "a__a-2": {"resolved": null}, "a__a-1": {"resolved": false}, ' \
              '"a__a-3": {"resolved": false, "cost": 1.0}}'
    text = ('{"leaderboards": [{"name": "Lite", "results": [{"folder": "20240101_x", "name": "X", "resolved": 40.0, '
            f'"per_instance_details": {details}}}, {{"folder": "20240102_y", "name": "Y", "resolved": 3.0}}]}}]}}')
    f = tmp_path / "leaderboards.json"
    f.write_text(text)
    (b,) = read_target(f).batches
    assert b.provenance.n_read == 4 == b.responses.num_rows + b.quarantine.num_rows  # 4 keys in the file, one repeated
    assert sorted(b.responses["sample_id"].to_pylist()) == ["a__a-1", "a__a-3"]
    assert b.responses.filter(pc.equal(b.responses["sample_id"], "a__a-1"))["outcome"][0].as_py() == "correct"
    reasons = " | ".join(b.quarantine["reason"].to_pylist())
    assert "appears twice" in reasons and "resolved is None" in reasons
    assert set(b.responses["benchmark"].to_pylist()) == {"swebench_lite"}
    assert any("20240102_y" in n and "no per_instance_details" in n for n in b.notes)
    f.write_text(text[:200])  # truncated: one quarantine row naming the file, nothing else
    (b,) = read_target(f).batches
    assert b.responses.num_rows == 0 and b.quarantine.num_rows == 1
    assert "truncated" in b.quarantine["reason"][0].as_py()


def _submission(root: Path, split: str, name: str, results: dict, preds: list[dict] | None = None) -> Path:
    sub = root / "evaluation" / split / name
    (sub / "results").mkdir(parents=True)
    (sub / "results" / "results.json").write_text(json.dumps(results, indent=4))
    (sub / "metadata.yaml").write_text("info:\n  name: demo\ntags:\n  checked: false\n")
    (sub / "README.md").write_text("# demo\n")
    (sub / "results" / "resolved_by_repo.json").write_text('{"astropy/astropy": {"resolved": 1, "total": 22}}')
    if preds is not None:
        (sub / "all_preds.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    return sub


def test_experiments_results_json_layout(tmp_path, db):
    db, tmp_path = db, tmp_path / "checkout"  # the catalog lives beside the inputs, not inside them
    current = {"no_generation": ["django__django-11099"], "no_logs": ["sympy__sympy-20590"],
               "resolved": ["astropy__astropy-12907", "django__django-11133", "sympy__sympy-13480"]}
    _submission(tmp_path, "verified", "20240620_sweagent_claude3.5sonnet", current)
    # the older layout: the full report map, one id under several statuses, plus the predictions file
    old = {"no_generation": ["a__a-4"], "generated": ["a__a-1", "a__a-2", "a__a-3"], "with_logs": ["a__a-1", "a__a-2", "a__a-3"],
           "install_fail": [], "reset_failed": [], "no_apply": ["a__a-3"], "applied": ["a__a-1", "a__a-2"],
           "test_errored": [], "test_timeout": [], "resolved": ["a__a-1"]}
    preds = [{"instance_id": i, "model_patch": f"diff --git {i}", "model_name_or_path": "rag"}
             for i in ("a__a-1", "a__a-2", "a__a-3", "a__a-5")] + [{"instance_id": "a__a-4", "model_patch": None}]
    _submission(tmp_path, "lite", "20231010_rag_gpt35", old, preds)
    found = discover(tmp_path)
    assert sorted(u.name for _, u in found.units) == ["20231010_rag_gpt35", "20240620_sweagent_claude3.5sonnet"]
    assert not found.unrecognised  # metadata, README and resolved_by_* belong to the submission folder
    sources = ingest(db, tmp_path)
    by_model = {sid.rsplit("/", 1)[1]: row for sid, row in sources.items()}
    cur = by_model["20240620_sweagent_claude3.5sonnet"]
    assert cur["n_read"] == len(set().union(*current.values())) == 5 == cur["n_accepted"]
    olds = by_model["20231010_rag_gpt35"]
    assert olds["n_read"] == len(set().union(*old.values()) | {p["instance_id"] for p in preds}) == 5
    rows = {(m, s): (o, lab, sc) for m, s, o, lab, sc in query(
        db, "select model, sample_id, outcome, source_label, original_score from responses")}
    assert rows[("20240620_sweagent_claude3.5sonnet", "django__django-11099")] == ("wrong", "no_generation", 0.0)
    assert rows[("20240620_sweagent_claude3.5sonnet", "sympy__sympy-20590")] == ("wrong", "no_logs", 0.0)
    assert rows[("20240620_sweagent_claude3.5sonnet", "sympy__sympy-13480")] == ("correct", "resolved", 1.0)
    assert rows[("20231010_rag_gpt35", "a__a-1")] == ("correct", "resolved", 1.0)
    assert rows[("20231010_rag_gpt35", "a__a-2")] == ("wrong", "unresolved", 0.0)
    assert rows[("20231010_rag_gpt35", "a__a-3")] == ("wrong", "no_apply", 0.0)
    assert rows[("20231010_rag_gpt35", "a__a-5")] == ("wrong", "unresolved", 0.0)  # only in all_preds.jsonl
    assert dict(query(db, "select benchmark, count(*) from responses group by 1")) == {"swebench_verified": 5,
                                                                                        "swebench_lite": 5}
    assert query(db, "select response from responses where sample_id = 'a__a-1'") == [("diff --git a__a-1",)]
    # the current layout cannot list evaluated-unresolved instances: the batch says how many are implicit
    res = read_target(tmp_path / "evaluation" / "verified")
    assert any("495 of the 500 verified instances are not listed" in n for n in res.batches[0].notes)


def test_experiments_contradictions_and_bad_lists(tmp_path):
    sub = _submission(tmp_path, "test", "20240101_bad", {"resolved": ["x__x-1", "x__x-2", 7], "no_generation": ["x__x-2"],
                                                         "no_logs": "x__x-3"})
    res = read_target(sub / "results" / "results.json")  # the file itself also works
    (b,) = res.batches
    assert b.provenance.source_id == "swebench_experiments:test/20240101_bad"
    assert b.provenance.n_read == 4 == b.responses.num_rows + b.quarantine.num_rows
    assert b.responses["sample_id"].to_pylist() == ["x__x-1"]
    reasons = " | ".join(b.quarantine["reason"].to_pylist())
    assert "both as resolved and as no_generation" in reasons and "non-text instance id" in reasons
    assert "not a list" in reasons
    assert set(b.responses["benchmark"].to_pylist()) == {"swebench_full"}
