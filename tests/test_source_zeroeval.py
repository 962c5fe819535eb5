"""ZeroEval result JSON on the real math-l5 slice, graded with ZeroEval's own math rule."""

import json
import re

import pyarrow.compute as pc

from audit.ingest import read_target
from audit.sources import ReadContext, adapters, discover, get
from cli_ingest import ingest, query

MODELS = ("Meta-Llama-3.1-8B-Instruct", "claude-3-5-sonnet-20240620", "gpt-4o-2024-05-13")


def _raw(shared_data, model):
    return json.loads((shared_data / "zeroeval" / "result_dirs" / "math-l5" / f"{model}.json").read_text("utf-8"))


def test_cli_ingest_accounts_for_every_record(shared_data, db):
    root = shared_data / "zeroeval"
    found = discover(root)
    assert [a.name for a, _ in found.units] == ["zeroeval"] * 3 and not found.unrecognised  # summary is auxiliary
    sources = ingest(db, root)
    assert len(sources) == 3
    for m in MODELS:
        row = sources[f"zeroeval:zeroeval/result_dirs/math-l5/{m}.json"]
        assert row["n_read"] == len(_raw(shared_data, m)) == 200 == row["n_accepted"] + row["n_quarantined"]
    assert query(db, "select distinct benchmark, grader from responses") == [("math_l5", "zeroeval/math-l5")]


def _independent_verdicts(records):
    """A second, simpler reading: the last quoted "answer" value, numbers compared as ZeroEval does."""
    correct = unparsed = 0
    for r in records:
        found = re.findall(r'"answer"\s*:\s*"([^"]*)"', r["output"][0])
        if not found:
            unparsed += 1
            continue
        num = re.compile(r"-?\d+(?:\.\d+)?")
        a = num.search(found[-1].replace("$", "").replace(",", ""))
        g = num.search(r["answer"].replace(",", ""))
        correct += bool(a and g and float(a.group()) == float(g.group()))
    return correct, unparsed


def test_accuracy_and_no_answer_counts(shared_data, db):
    ingest(db, shared_data / "zeroeval")
    got = {m: (c, na) for m, c, na in query(db, """select model, sum(original_score)::int,
              count(*) filter (where source_label = 'no_answer') from responses group by 1""")}
    assert got == {"gpt-4o-2024-05-13": (152, 9), "claude-3-5-sonnet-20240620": (128, 0),
                   "Meta-Llama-3.1-8B-Instruct": (72, 19)}
    for m in MODELS:
        correct, unparsed = _independent_verdicts(_raw(shared_data, m))
        # the simple reading agrees to within a few items (it misses unquoted and \boxed answers, fractions)
        assert abs(correct - got[m][0]) <= 4, (m, correct)
        assert got[m][1] <= unparsed
    # the claude summary says "No answer 0.00" over all 721 problems; on these 200 it is 0 too
    summary = {s["Model"]: s for s in json.loads((shared_data / "zeroeval" / "result_dirs" / "math-l5.summary.json").read_text())}
    assert summary["claude-3-5-sonnet-20240620"]["No answer"] == "0.00"


def test_known_items(shared_data):
    root = shared_data / "zeroeval"
    rows = {}
    for m in MODELS:
        t = next(get("zeroeval").read(root / "result_dirs" / "math-l5" / f"{m}.json", ReadContext(root=root))).responses
        rows[m] = {r["sample_id"]: r for r in t.to_pylist()}
    # problem 0 (gold -15): GPT-4o answers -15, Claude 3.5 Sonnet answers -9
    assert rows["gpt-4o-2024-05-13"]["0"]["extracted_answer"] == "-15"
    assert rows["gpt-4o-2024-05-13"]["0"]["outcome"] == "correct"
    assert rows["claude-3-5-sonnet-20240620"]["0"]["extracted_answer"] == "-9"
    assert rows["claude-3-5-sonnet-20240620"]["0"]["outcome"] == "wrong"
    unparsed = [r for r in rows["Meta-Llama-3.1-8B-Instruct"].values() if r["source_label"] == "no_answer"]
    assert unparsed and all(r["outcome"] == "wrong" and r["extracted_answer"] is None for r in unparsed)


def test_zeroeval_math_rule():
    # Load the whole registry before importing one adapter module by name: the registry loads lazily, only while
    # empty, so importing a single adapter module first (at collection time) would hide every other format.
    adapters()
    from audit.sources.zeroeval import extract_answer, is_match, sanitise

    # the reply's JSON object wins; a reply with raw newlines inside strings still parses (newlines dropped)
    assert extract_answer("m", '```json\n{\n "reasoning": "a\nb",\n "answer": "3/4"\n}\n```') == "3/4"
    assert extract_answer("m", '{"answer": 42}') == "42"
    # broken JSON: the quoted-value pattern, then an unquoted value
    assert extract_answer("m", '{"reasoning": "x { y", "answer": "7"') == "7"
    assert extract_answer("m", "answer: 12, done") == "12"
    # \boxed{} is ZeroEval's fallback for Llama-3.1 models only
    assert extract_answer("Meta-Llama-3.1-8B-Instruct", "so $\\boxed{36}$") == "36"
    assert extract_answer("gpt-4o", "so $\\boxed{36}$") is None
    # fractions become floats without eval; anything else is left alone
    assert sanitise("$3/4$") == "0.75" and sanitise("__import__('os')/1") == "__import__('os')/1"
    assert is_match("0.75", "\\frac{3}{4}") is False and is_match("3/4", "0.75") and is_match("1,000", "1000")
    assert is_match("x = -5", "-5.0") and not is_match("abc", "5")


def test_truncated_file_keeps_records_before_the_cut(shared_data, tmp_path):
    text = (shared_data / "zeroeval" / "result_dirs" / "math-l5" / "gpt-4o-2024-05-13.json").read_text("utf-8")
    d = tmp_path / "math-l5"
    d.mkdir()
    (d / "gpt-4o-2024-05-13.json").write_text(text[: len(text) // 2])
    b = read_target(tmp_path).batches[0]
    assert 50 < b.responses.num_rows < 200
    assert b.quarantine.num_rows == 1 and "truncated" in b.quarantine["reason"][0].as_py()
    assert b.provenance.n_read == b.responses.num_rows + 1
    assert pc.all(pc.equal(b.responses["model"], "gpt-4o-2024-05-13")).as_py()


def test_other_datasets_gsm_graded_and_unknown_rules_quarantined(shared_data, tmp_path):
    recs = _raw(shared_data, "gpt-4o-2024-05-13")[:6]
    gsm = [dict(r, dataset="gsm", id=f"gsm8k-main-test-#{i}", answer="# " + r["answer"]) for i, r in enumerate(recs[:3])]
    crux = [dict(r, dataset="crux", id=f"sample_{i}") for i, r in enumerate(recs[3:])]
    d = tmp_path / "result_dirs" / "mixed"
    d.mkdir(parents=True)
    (d / "gpt-4o-2024-05-13.json").write_text(json.dumps(gsm + crux, indent=2))
    b = read_target(tmp_path).batches[0]
    assert b.provenance.n_read == 6 and b.responses.num_rows == 3 and b.quarantine.num_rows == 3
    assert set(b.responses["benchmark"].to_pylist()) == {"gsm8k"}
    assert b.responses["gold"][0].as_py() == recs[0]["answer"]  # "# " stripped, as ZeroEval does
    assert all("'crux'" in r and "not implemented" in r for r in b.quarantine["reason"].to_pylist())
