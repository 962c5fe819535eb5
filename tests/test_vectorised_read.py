"""The vectorised lm-eval reader (pyarrow.json) must give exactly what the per-line reader gives, or step aside."""

from __future__ import annotations

import shutil
from pathlib import Path


from audit.ingest import read_target
from test_hostile_inputs import lm_record, write_lm


def _pair(src_dir: Path, tmp: Path) -> tuple[Path, Path]:
    """The same folder twice; in the second, one trailing blank line forces the per-line path (same records)."""
    a, b = tmp / "a" / src_dir.name, tmp / "b" / src_dir.name
    shutil.copytree(src_dir, a)
    shutil.copytree(src_dir, b)
    for f in b.glob("samples_*.jsonl"):
        f.write_bytes(f.read_bytes() + b"\n")
    return a, b


def _same(a: Path, b: Path) -> list:
    fast, slow = read_target(a).batches, read_target(b).batches
    assert [x.notes for x in fast] == [["read vectorised (pyarrow.json)"]] * len(fast)
    assert all(x.notes == [] for x in slow)
    for f, s in zip(fast, slow):
        assert f.responses.equals(s.responses), (f.responses.slice(0, 2).to_pylist(), s.responses.slice(0, 2).to_pylist())
        assert f.quarantine.equals(s.quarantine)
        assert f.locators.equals(s.locators)
        assert f.provenance.n_read == s.provenance.n_read
    return fast


def test_real_log_samples_read_identically_both_ways(shared_data, tmp_path):
    for d in sorted((shared_data / "truthfulqa_multi" / "results" / "gen" / "en").iterdir()):
        fast = _same(*_pair(d, tmp_path / d.name))
        assert fast[0].responses.num_rows == 100


def test_synthetic_edge_shapes_read_identically(tmp_path):
    d = tmp_path / "src" / "org__m"
    recs = [lm_record(i, response=r) for i, r in enumerate(["42", "", "I don't know", "<b>x</b>", "ünï"])]
    recs += [lm_record(5), lm_record(1, response="dup")]  # a duplicate: same quarantine row both ways
    recs[3]["doc"] = {"question": "", "query": "the query"}  # empty question falls through to query
    # `question or query or problem`: with nothing non-empty, the last one, "" where given, else nothing
    recs[0]["doc"] = {"question": "", "query": "", "problem": ""}
    recs[1]["doc"] = {"question": "", "problem": ""}
    recs[2]["doc"] = {"question": "", "query": ""}
    recs[4]["doc"] = {}
    recs[5]["doc"] = {"problem": "the problem", "question": None}
    write_lm(d, recs)
    fast = _same(*_pair(d, tmp_path))
    assert fast[0].quarantine.num_rows == 1 and fast[0].responses.num_rows == 6
    assert fast[0].responses["prompt"].to_pylist() == ["", "", None, "the query", None, "the problem"]


def test_anything_unusual_takes_the_per_line_path(tmp_path):
    d = tmp_path / "org__m"
    f = write_lm(d, [lm_record(0), lm_record("1"), lm_record(2)])  # doc_id changes type between lines
    (b,) = read_target(f).batches
    assert b.notes == [] and b.responses["sample_id"].to_pylist() == ["0", "1", "2"]
    f = write_lm(d, [lm_record(0), '{"doc_id": 1, "filtered_resps": ["1"], "exact_match": NaN}'])
    (b,) = read_target(f).batches
    assert b.notes == [] and b.quarantine.num_rows == 1


def test_metric_shapes_the_projection_could_hide_take_the_per_line_path(tmp_path):
    d = tmp_path / "org__m"
    # a preferred metric first seen after the schema-inference block: line 4 is graded by acc, not exact_match
    f = write_lm(d, [lm_record(0), lm_record(1), lm_record(2), lm_record(3, acc=1.0)])
    (b,) = read_target(f).batches
    assert b.notes == []
    assert b.responses["grader"].to_pylist()[3] == "lm_eval/gsm8k/acc"
    # a metric given as null is a bad record, not a missing key
    f = write_lm(d, [lm_record(0), lm_record(1, acc=None)])
    (b,) = read_target(f).batches
    assert b.notes == [] and b.quarantine["locator"].to_pylist() == [f"{f.name}:2"]


def test_loosely_typed_values_take_the_per_line_path(tmp_path):
    """Values a lenient JSON reader would convert ("1" into a number column, 1 or an object into a text column) or
    accept (a trailing comma, inf, nesting deeper than Python's json allows, a bare null line): the vectorised
    path steps aside and the per-line path gives exactly what it gives for the same records."""
    d = tmp_path / "org__m"
    for bad, quarantined in [
        (lm_record(1, exact_match="1"), 0),                        # a string where a number is expected (float("1"))
        (lm_record(1, response=7), 0),                             # a number where text is expected (coerced)
        (lm_record(1, response={"text": "42"}), 0),                # an object where text is expected (coerced)
        ({**lm_record(1), "target": {"a": 1}}, 0),                 # an object as the target (coerced)
        ({**lm_record(1), "doc": {"question": 5}}, 0),             # a number as the question
        ({**lm_record(1), "doc": {"question": {"q": "x"}}}, 0),    # an object as the question
        ({**lm_record(1), "doc": "a string doc"}, 0),              # the doc is not an object
        (lm_record(1, exact_match=True), 0),                       # a boolean metric (float(True) == 1.0)
        (lm_record(1.5), 1),                                        # a float id (rejected by the builder)
        ('{"doc_id": 1, "filtered_resps": ["1"], "exact_match": 1.0,}', 1),           # trailing comma
        ('{"doc_id": 1, "filtered_resps": ["1"], "exact_match": 1.0, "x": [inf]}', 1),  # not JSON for Python
        ('{"doc_id": 1, "filtered_resps": ["1"], "exact_match": 1.0, "x": ' + "[" * 2000 + "]" * 2000 + "}", 1),
        ('null', 1),                                               # DuckDB: a row of nulls
    ]:
        f = write_lm(d, [lm_record(0), bad, lm_record(2)])
        (b,) = read_target(f).batches
        assert b.notes == [], bad
        assert b.quarantine.num_rows == quarantined, (bad, b.quarantine["reason"].to_pylist())
        assert b.responses.num_rows + b.quarantine.num_rows == 3
        # the same file with a trailing blank line is read per line only: the outcome must be identical
        g = write_lm(tmp_path / "slow" / "org__m", [lm_record(0), bad, lm_record(2)])
        g.write_bytes(g.read_bytes() + b"\n")
        (s,) = read_target(g).batches
        assert b.responses.equals(s.responses) and b.quarantine.equals(s.quarantine), bad
