"""TruthfulQA human review CSV: the human truthfulness grader, joined to the lm-eval samples of the same answers."""

import csv
from collections import Counter
from pathlib import Path

from audit.ingest import read_target
from audit.sources import discover

HEADER = "id,question,correct_answers,incorrect_answers,model_answer,truthfulness,informativeness,changed,antes\n"


def _csv(shared_data) -> Path:
    return shared_data / "truthfulqa_multi" / "judge" / "manual_review" / "evaluated" / "en.csv"


def test_real_labels_reconcile_and_match_the_file(shared_data):
    path = _csv(shared_data)
    with path.open(newline="", encoding="utf-8") as fh:
        raw = list(csv.DictReader(fh))
    res = read_target(str(path))
    (batch,) = res.batches
    assert batch.responses.num_rows + batch.quarantine.num_rows == len(raw) == 300
    assert batch.quarantine.num_rows == 0
    rows = batch.responses.to_pylist()
    # Truthful answers per model, counted straight from the CSV, equal the credited rows.
    expected = Counter(r["id"].split("__", 1)[1] for r in raw if r["truthfulness"] == "yes")
    got = Counter(r["model"].split("/", 1)[1] for r in rows if r["original_score"] == 1.0)
    assert got == expected
    assert {r["grader"] for r in rows} == {"human/truthfulness"}
    assert {r["benchmark"] for r in rows} == {"truthfulqa_gen"}


def test_models_and_samples_join_the_lm_eval_outputs(shared_data):
    res = read_target(str(shared_data / "truthfulqa_multi"))
    by_grader: dict[str, set] = {}
    for b in res.batches:
        for r in b.responses.select(["grader", "model", "sample_id"]).to_pylist():
            by_grader.setdefault(r["grader"].split("/")[0], set()).add((r["model"], r["sample_id"]))
    assert by_grader["human"] == by_grader["lm_eval"]  # same 3 models x 100 doc ids
    assert len({m for m, _ in by_grader["human"]}) == 3
    assert not res.unrecognised  # the CSV used to be reported as unknown


def test_bad_rows_are_quarantined_with_reasons(tmp_path):
    path = tmp_path / "en.csv"
    path.write_text(
        HEADER
        + '7__m1,"Q?","I have no comment.\nA","B","I have no comment.",yes,no,,\n'
        + '8__m1,"Q?","A","B","An answer",maybe,yes,,\n'
        + 'nine,"Q?","A","B","An answer",no,yes,,\n'
        + '10__m1,"Q?","A","B","An answer",no,yes,,,extra\n', encoding="utf-8")
    assert [a.name for a, _ in discover(path).units] == ["truthfulqa_human_review"]
    (batch,) = read_target(str(path)).batches
    assert batch.responses.num_rows + batch.quarantine.num_rows == 4
    ok = batch.responses.to_pylist()
    assert [(r["model"], r["sample_id"], r["outcome"], r["original_score"]) for r in ok] == [
        ("m1", "7", "abstained", 1.0)]  # no org folder beside it: the short name is kept
    reasons = sorted(batch.quarantine["reason"].to_pylist())
    assert any("truthfulness is 'maybe'" in r for r in reasons)
    assert any("is not <doc_id>__<model>" in r for r in reasons)
    assert any("beyond the header" in r for r in reasons)
    assert all("en.csv:record" in loc for loc in batch.quarantine["locator"].to_pylist())
