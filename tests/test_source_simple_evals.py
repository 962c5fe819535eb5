"""simple-evals style JSONL + gold files, on the real kuk/simple-evals-ru slice."""

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.compute as pc

from audit.ingest import read_target
from audit.sources import ReadContext, discover, get
from cli_ingest import ingest, jsonl_records, nonblank_lines, query

BENCHES = {"bbh": "bbh", "gpqa": "gpqa", "math": "math_500", "mmlu": "mmlu_pro", "simpleqa": "simpleqa"}


def _results(root: Path) -> list[Path]:
    return sorted((root / "data" / "results").glob("*/*.jsonl"))


def test_cli_ingest_accounts_for_every_line(shared_data, db):
    root = shared_data / "simple_evals_ru"
    files = _results(root)
    assert len(files) == 16
    sources = ingest(db, root)
    assert len(sources) == 16  # one per results file; the gold files are read through them, not as sources
    for f in files:
        row = sources[f"simple_evals:simple_evals_ru/{f.relative_to(root).as_posix()}"]
        assert row["n_read"] == nonblank_lines(f) == row["n_accepted"] + row["n_quarantined"]
        assert row["n_quarantined"] == 0
        assert row["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
        assert row["uri"] == f.resolve().as_uri() and row["format"] == "simple_evals"
    assert dict(query(db, "select benchmark, count(distinct model) from responses group by 1")) == {
        "bbh": 3, "gpqa": 3, "math_500": 3, "mmlu_pro": 3, "simpleqa": 4}


def test_real_values_match_the_raw_files(shared_data, db):
    root = shared_data / "simple_evals_ru"
    ingest(db, root)
    for f in _results(root):
        raw = jsonl_records(f)
        bench, model = BENCHES[f.parent.name], f.stem.split("_", 1)[1]
        (n, n_correct, n_unparsed), = query(db, f"""
            select count(*), sum(original_score), count(*) filter (where source_label = 'pred=?')
            from responses where benchmark = '{bench}' and model = '{model}'""")
        assert n == len(raw)
        assert n_correct == sum(r["is_correct"] for r in raw)
        assert n_unparsed == sum(r.get("pred") == "?" for r in raw)
    # a known value: DeepSeek-V3 on the first 100 GPQA-diamond questions, 52 correct by the harness
    assert query(db, "select sum(original_score) from responses where benchmark='gpqa' and model='deepseek_v3'") == [(52.0,)]
    # gold comes from data/benches: every GPQA / MMLU-Pro letter verdict agrees with pred == target
    mism = query(db, """select count(*) from responses where benchmark in ('gpqa', 'mmlu_pro', 'bbh')
                        and extracted_answer is not null and (extracted_answer = gold) <> (original_score = 1)""")
    assert mism == [(0,)]
    assert query(db, "select count(*) from responses where gold is null") == [(0,)]


def test_unparsed_is_a_format_failure_not_an_abstention(shared_data):
    f = shared_data / "simple_evals_ru" / "data" / "results" / "gpqa" / "08_gigachat_lite.jsonl"
    ctx = ReadContext(root=shared_data / "simple_evals_ru")
    t = next(get("simple_evals").read(f, ctx)).responses  # the adapter's own verdict, before abstention detection
    unparsed = t.filter(pc.equal(t["source_label"], "pred=?"))
    assert unparsed.num_rows == 10
    assert set(unparsed["outcome"].to_pylist()) == {"wrong"}
    assert unparsed["extracted_answer"].null_count == 10 and unparsed["abstention_reason"].null_count == 10
    # after detection, an unparsed row can only become abstained by the detector reading the raw text
    res = read_target(shared_data / "simple_evals_ru" / "data" / "results" / "bbh" / "08_gigachat_lite.jsonl")
    t = res.batches[0].responses
    reasons = t.filter(pc.equal(t["source_label"], "pred=?"))["abstention_reason"].drop_null().to_pylist()
    assert all(r.startswith("detector:") for r in reasons)


def test_simpleqa_judge_labels(shared_data):
    root = shared_data / "simple_evals_ru"
    f = root / "data" / "results" / "simpleqa" / "02_llama_3_2_1b.jsonl"
    raw = jsonl_records(f)
    t = next(get("simple_evals").read(f, ReadContext(root=root))).responses
    by_id = {r["sample_id"]: r for r in t.to_pylist()}
    for r in raw:
        row = by_id[str(r["id"])]
        assert row["source_label"] == r["judge_pred"]
        expected = {"correct": "correct", "incorrect": "wrong", "not_attempted": "abstained"}[r["judge_pred"]]
        assert row["outcome"] == expected
        assert row["abstention_reason"] == ("source:not_attempted" if expected == "abstained" else None)
    assert sum(r["outcome"] == "abstained" for r in by_id.values()) == 9  # Llama-3.2-1B declines 9 of 10
    gold = {str(g["id"]): g["target"] for g in jsonl_records(root / "data" / "benches" / "simpleqa.jsonl")}
    assert all(row["gold"] == gold[sid] for sid, row in by_id.items())


def test_same_files_elsewhere_ingest_alike(shared_data, tmp_path):
    src = shared_data / "simple_evals_ru"
    copy = tmp_path / "somewhere" / "else"
    shutil.copytree(src, copy)
    a = {b.provenance.source_id.split("/", 1)[1]: b for b in read_target(src).batches}
    b = {x.provenance.source_id.split("/", 1)[1]: x for x in read_target(copy).batches}
    assert a.keys() == b.keys() and len(a) == 16
    for k in a:
        assert a[k].responses.drop_columns(["source_id"]).equals(b[k].responses.drop_columns(["source_id"]))
        assert a[k].provenance.sha256 == b[k].provenance.sha256


def test_bad_lines_and_missing_gold_are_accounted_for(shared_data, tmp_path):
    src = shared_data / "simple_evals_ru" / "data" / "results" / "mmlu" / "16_deepseek_v3.jsonl"
    lines = src.read_text("utf-8").splitlines()
    rec = json.loads(lines[3])
    del rec["is_correct"]
    lines[3] = json.dumps(rec)
    lines[5] = lines[5][: len(lines[5]) // 2]  # a cut line
    lines[7] = lines[6]  # a duplicate id
    d = tmp_path / "results" / "mmlu"  # no benches/ beside it: gold missing
    d.mkdir(parents=True)
    (d / "16_deepseek_v3.jsonl").write_text("\n".join(lines) + "\n")
    found = discover(tmp_path)
    assert [a.name for a, _ in found.units] == ["simple_evals"] and not found.unrecognised
    batch = read_target(tmp_path).batches[0]
    assert batch.provenance.n_read == 100 == batch.responses.num_rows + batch.quarantine.num_rows
    reasons = " | ".join(batch.quarantine["reason"].to_pylist())
    assert batch.quarantine.num_rows == 3
    assert "is_correct" in reasons and "invalid JSON" in reasons and "duplicate key" in reasons
    assert batch.responses["gold"].null_count == batch.responses.num_rows
    assert batch.responses["benchmark"][0].as_py() == "mmlu"  # without the gold's ten options it cannot say Pro
    assert any("no gold file" in n for n in batch.notes)


def test_an_id_missing_from_the_gold_is_noted(shared_data, tmp_path):
    src = shared_data / "simple_evals_ru" / "data"
    (tmp_path / "results" / "gpqa").mkdir(parents=True)
    (tmp_path / "benches").mkdir()
    gold = (src / "benches" / "gpqa.jsonl").read_text("utf-8").splitlines()
    (tmp_path / "benches" / "gpqa.jsonl").write_text("\n".join(gold[1:]) + "\n")  # drop the first question
    (tmp_path / "results" / "gpqa" / "06_qwen_2_5_7b.jsonl").write_bytes(
        (src / "results" / "gpqa" / "06_qwen_2_5_7b.jsonl").read_bytes())
    res = read_target(tmp_path)
    assert not res.unrecognised
    b = res.batches[0]
    assert b.responses.num_rows == 100 and b.responses["gold"].null_count == 1
    first = json.loads(gold[0])["id"]
    assert any(n.startswith("1 id(s) not in the gold file") and first in n for n in b.notes)
