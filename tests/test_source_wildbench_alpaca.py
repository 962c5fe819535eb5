"""WildBench (scalar judge grade) and AlpacaEval (pairwise preference) on the real published files."""

import json
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc

from audit.ingest import read_target
from audit.sources import discover, get
from audit.sources import ReadContext


def _raw_batches(root: Path, adapter: str):
    """Batches straight from the adapter (before abstention detection), so the source's own grades are visible."""
    ctx = ReadContext(root=root)
    return [b for a, unit in discover(root, only=adapter).units for b in a.read(unit, ctx)]


def test_wildbench_real_scores_reconcile_and_threshold_at_7(shared_data):
    root = shared_data / "wildbench"
    files = sorted(root.rglob("*.json"))
    assert len(files) == 2
    batches = {Path(b.provenance.uri).name: b for b in _raw_batches(root, "wildbench")}
    assert set(batches) == {f.name for f in files}
    for f in files:
        src = json.loads(f.read_text())
        b = batches[f.name]
        # records read (counted here, independently) = accepted + quarantined
        assert len(src) == 150 == b.provenance.n_read == b.responses.num_rows + b.quarantine.num_rows
        assert b.quarantine.num_rows == 0
        t = b.responses
        assert set(t["benchmark"].to_pylist()) == {"wildbench"}
        assert set(t["grader"].to_pylist()) == {"wildbench/v2.0522/score/gpt-4-turbo-2024-04-09"}
        assert set(t["model"].to_pylist()) == {src[0]["model_test"]}
        by_id = {r["session_id"]: r for r in src}
        for row in t.to_pylist():
            r = by_id[row["sample_id"]]
            assert row["original_score"] == float(r["score"])
            assert row["source_label"] == f"score={r['score']}"
            assert row["response"] == r["model_output"]
            assert row["outcome"] == ("correct" if int(r["score"]) >= 7 else "wrong")
        assert pc.sum(pc.equal(t["outcome"], "correct")).as_py() == sum(int(r["score"]) >= 7 for r in src)
        assert b.provenance.sha256 and b.provenance.uri.startswith("file://")
    gemma = batches["gemma-2b-it.json"].responses
    assert gemma.filter(pc.equal(gemma["sample_id"], "ae006110bb364606"))["original_score"].to_pylist() == [1.0]
    assert Counter(gemma["original_score"].to_pylist())[3.0] == 30  # the real distribution, not a constant


def test_alpaca_eval_real_preferences_reconcile(shared_data):
    root = shared_data / "alpaca_eval"
    res = read_target(root)
    assert res.unrecognised == []  # model_outputs.json files are read through the annotations, not ignored
    raw = {b.responses["model"][0].as_py(): b for b in _raw_batches(root, "alpaca_eval")}
    assert sorted(raw) == ["OpenHermes-2.5-Mistral-7B", "alpaca-7b", "claude-2.1"]
    for model, b in raw.items():
        f = root / "results" / model / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json"
        src = json.loads(f.read_text())
        assert len(src) == 150 == b.provenance.n_read == b.responses.num_rows + b.quarantine.num_rows
        t = b.responses
        assert set(t["grader"].to_pylist()) == {"alpaca_eval/weighted_alpaca_eval_gpt4_turbo/vs=gpt4_1106_preview"}
        wins = sum(r["preference"] > 1.5 for r in src)
        assert pc.sum(pc.equal(t["outcome"], "correct")).as_py() == wins
        assert pc.sum(pc.equal(t["source_label"], "win")).as_py() == wins
        assert sorted(t["original_score"].to_pylist()) == sorted(float(r["preference"]) for r in src)
        outputs = {r["instruction"]: r["output"] for r in json.loads((root / "results" / model / "model_outputs.json").read_text())}
        assert sorted(t["response"].to_pylist()) == sorted(outputs[r["instruction"]] for r in src)
    # real win counts against gpt4_1106_preview on these 150 instructions
    assert {m: pc.sum(pc.equal(b.responses["outcome"], "correct")).as_py() for m, b in raw.items()} == {
        "OpenHermes-2.5-Mistral-7B": 8, "alpaca-7b": 0, "claude-2.1": 18}
    # the same instruction has the same sample id for every model
    ids = [set(b.responses["sample_id"].to_pylist()) for b in raw.values()]
    assert ids[0] == ids[1] == ids[2] and len(ids[0]) == 150


def test_alpaca_tie_draw_null_and_out_of_range(tmp_path: Path):
    d = tmp_path / "results" / "m" / "alpaca_eval_gpt4"
    d.mkdir(parents=True)
    base = {"output_1": "ref", "generator_1": "gpt4", "dataset": "x", "output_2": "mine", "generator_2": "m",
            "annotator": "alpaca_eval_gpt4", "price_per_example": 0.01, "time_per_example": 1.0}
    prefs = [2, 1, 1.5, 0, None, 3.0, 1.7]
    rows = [{**base, "instruction": f"q{i}", "preference": p} for i, p in enumerate(prefs)]
    f = d / "annotations.json"
    f.write_text(json.dumps(rows, indent=2))
    b = next(get("alpaca_eval").read(f, ReadContext(root=tmp_path)))
    assert b.provenance.n_read == 7 and b.responses.num_rows == 5 and b.quarantine.num_rows == 2
    got = [(r["original_score"], r["source_label"], r["outcome"]) for r in b.responses.to_pylist()]
    assert got == [(2.0, "win", "correct"), (1.0, "loss", "wrong"), (1.5, "tie", "wrong"), (0.0, "tie", "wrong"),
                   (1.7, "win", "correct")]
    reasons = dict(zip(b.quarantine["locator"].to_pylist(), b.quarantine["reason"].to_pylist()))
    assert "null" in reasons["annotations.json[4]"] and "outside" in reasons["annotations.json[5]"]


def test_wildbench_bad_scores_are_quarantined(tmp_path: Path):
    d = tmp_path / "v2.0625" / "score.v2" / "eval=gpt-4o-2024-05-13"
    d.mkdir(parents=True)
    rec = {"session_id": "s0", "parsed_result": {"strengths": "", "weaknesses": "", "score": "8"},
           "meta_data": {"batch_req_id": "b", "usage": {}, "error": None}, "model_test": "org/m", "score": "8",
           "model_output": "hello"}
    rows = [rec, {**rec, "session_id": "s1", "score": "N/A"}, {**rec, "session_id": "s2", "score": "11"},
            {**rec, "session_id": "s3", "meta_data": {"error": "rate limited"}}, {**rec, "session_id": "s4", "score": "6"}]
    f = d / "m.json"
    f.write_text(json.dumps(rows, indent=2))
    b = read_target(f).batches[0]
    assert b.provenance.n_read == 5
    assert [(r["sample_id"], r["outcome"]) for r in b.responses.to_pylist()] == [("s0", "correct"), ("s4", "wrong")]
    assert b.responses["grader"][0].as_py() == "wildbench/v2.0625/score/gpt-4o-2024-05-13"
    assert len(b.quarantine) == 3


def test_cli_ingest_of_both_folders_reconciles_in_the_catalog(shared_data, tmp_path: Path):
    from audit.cli import main
    from catalog.writer import connect_reader

    db = tmp_path / "c.duckdb"
    assert main(["ingest", str(shared_data / "wildbench"), str(shared_data / "alpaca_eval"), "--db", str(db)]) == 0
    con = connect_reader(db)
    rows = con.sql("SELECT format, sum(n_read), sum(n_accepted), sum(n_quarantined) FROM sources "
                   "GROUP BY format ORDER BY format").fetchall()
    assert rows == [("alpaca_eval", 450, 450, 0), ("wildbench", 300, 300, 0)]
    assert con.sql("SELECT count(*) FROM source_failures").fetchall() == [(0,)]


def test_same_format_elsewhere_needs_no_code(shared_data, tmp_path: Path):
    """A WildBench file copied out of its repository layout, and an AlpacaEval file renamed, still ingest."""
    import shutil

    src = next((shared_data / "wildbench").rglob("gemma-2b-it.json"))
    f = tmp_path / "anywhere" / "my-run.json"
    f.parent.mkdir()
    shutil.copy(src, f)
    [b] = read_target(f).batches
    assert b.provenance.n_read == 150 and set(b.responses["model"].to_pylist()) == {"google/gemma-2b-it"}
    assert set(b.responses["grader"].to_pylist()) == {"wildbench/v2/score/unknown-judge"}  # path carried the judge
    a = next((shared_data / "alpaca_eval").rglob("claude-2.1/*/annotations.json"))
    g = tmp_path / "other" / "ann.json"
    g.parent.mkdir()
    shutil.copy(a, g)
    [c] = read_target(g).batches
    assert c.provenance.n_read == 150 and set(c.responses["model"].to_pylist()) == {"claude-2.1"}
