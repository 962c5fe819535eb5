"""SimpleQA graded results (grade A/B/C), on the real Eyalbenba/eval-simpleQA slice."""

import json
from collections import Counter

import pyarrow.compute as pc

from audit.ingest import read_target
from audit.sources import ReadContext, discover, get
from cli_ingest import ingest, jsonl_records, nonblank_lines, query


def _files(shared_data):
    return sorted((shared_data / "simpleqa_tavily").rglob("*_results.jsonl"))


def test_cli_ingest_accounts_for_every_line(shared_data, db):
    root = shared_data / "simpleqa_tavily"
    found = discover(root)
    assert [a.name for a, _ in found.units] == ["simpleqa_graded"] * 2 and not found.unrecognised  # summaries: aux
    sources = ingest(db, root)
    assert len(sources) == 2
    for f in _files(shared_data):
        row = sources[f"simpleqa_graded:simpleqa_tavily/{f.relative_to(root).as_posix()}"]
        assert row["n_read"] == nonblank_lines(f) == 400 == row["n_accepted"] + row["n_quarantined"]
        assert row["n_quarantined"] == 0


def test_grades_map_to_outcomes_with_the_label_kept(shared_data, db):
    ingest(db, shared_data / "simpleqa_tavily")
    for f in _files(shared_data):
        raw = jsonl_records(f)
        config = raw[0]["config"]
        grades = Counter(r["grade"] for r in raw)
        got = dict(query(db, f"select source_label, count(*) from responses where model = '{config}' group by 1"))
        assert got == dict(grades)
        # the source's C is an abstention with the source's reason; A is the only credit
        assert query(db, f"""select count(*) from responses where model = '{config}' and source_label = 'C'
                             and outcome = 'abstained' and abstention_reason = 'source:not_attempted'""") == [(grades["C"],)]
        assert query(db, f"select sum(original_score) from responses where model = '{config}'") == [(grades["A"],)]
    # known values: advanced_advanced declines 86 of the 400 (tavily_advanced_basic only 1), accuracy 225/400
    assert dict(query(db, "select model, count(*) from responses where source_label = 'C' group by 1")) == {
        "tavily_advanced_advanced": 86, "tavily_advanced_basic": 1}
    assert query(db, "select avg(original_score) from responses where model = 'tavily_advanced_advanced'") == [(225 / 400,)]


def test_null_prediction_and_bad_grades(shared_data, tmp_path):
    f = shared_data / "simpleqa_tavily" / "results" / "run_20250225_143500" / "tavily_advanced_advanced_results.jsonl"
    t = next(get("simpleqa_graded").read(f, ReadContext(root=f.parent))).responses
    nulls = t.filter(pc.is_null(t["response"]))
    assert nulls.num_rows == 8 and set(nulls["outcome"].to_pylist()) == {"abstained"}  # all eight are graded C
    lines = f.read_text("utf-8").splitlines()[:20]
    bad = [json.loads(x) for x in lines[:3]]
    bad[0]["grade"] = "D"
    bad[1]["grade"] = None
    del bad[2]["grade"]
    lines[:3] = [json.dumps(x) for x in bad]
    lines.append(lines[10])  # the same question twice
    out = tmp_path / "x_results.jsonl"
    out.write_text("\n".join(lines) + "\n")
    b = read_target(out).batches[0]
    assert b.provenance.n_read == 21 == b.responses.num_rows + b.quarantine.num_rows
    assert b.quarantine.num_rows == 4
    reasons = b.quarantine["reason"].to_pylist()
    assert sum("not one of A, B, C" in r for r in reasons) == 2 and sum("grade" in r for r in reasons) == 3
