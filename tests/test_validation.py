"""Great Expectations suites over the canonical tables (audit/validation.py): real GE runs, real catalog."""

from __future__ import annotations

import math

import pyarrow as pa

from audit.analysis import derived_tables
from audit.ingest import read_target
from audit.records import RESPONSE_SCHEMA, Provenance, RecordBuilder
from audit.validation import VALIDATION_SCHEMA, validate_batches, validate_scores
from catalog.writer import CatalogWriter


def _batch(source_id: str, n: int):
    b = RecordBuilder(source_id, benchmark="mmlu_pro", grader="mmlu_pro_official", model="m")
    for i in range(n):
        b.add(sample_id=i, original_score=float(i % 2), outcome="correct" if i % 2 else "wrong",
              response=f"r{i}", locator=f"{source_id}.json[{i}]")
    return b.finish(Provenance(source_id, "mmlu_pro_official", "file:///x", "0" * 64))


def test_rows_that_bypass_the_builder_are_quarantined_by_expectation(tmp_path):
    """A vectorised adapter builds its table without RecordBuilder.add: the suite is then the only gate."""
    a, b = _batch("a", 8), _batch("b", 3)
    rows = a.responses.to_pylist()
    rows[1]["confidence"] = 1.5
    rows[2]["outcome"] = "maybe"
    rows[3]["outcome"] = None
    rows[4]["original_score"] = math.nan
    rows[5]["model"] = None
    rows[6]["sample_id"] = rows[0]["sample_id"]  # a duplicate key: the first copy stays
    rows[7]["confidence"] = -0.1
    i = RESPONSE_SCHEMA.get_field_index("model")  # a nullable model column, as a careless adapter might build
    a.responses = pa.Table.from_pylist(rows, schema=RESPONSE_SCHEMA.set(i, pa.field("model", pa.string())))

    validate_batches([a, b])

    for batch in (a, b):
        batch.check_reconciled()
    assert a.responses["sample_id"].to_pylist() == ["0"]
    assert b.responses.num_rows == 3 and b.quarantine.num_rows == 0
    q = dict(zip(a.quarantine["locator"].to_pylist(), a.quarantine["reason"].to_pylist()))
    assert q["a.json[1]"] == "validation failed: expect_column_values_to_be_between(confidence in [0, 1])"
    assert q["a.json[7]"] == q["a.json[1]"]
    assert q["a.json[2]"] == ("validation failed: expect_column_values_to_be_in_set"
                              "(outcome in {correct, wrong, abstained})")
    assert "expect_column_values_to_not_be_null(outcome)" in q["a.json[3]"]
    assert q["a.json[4]"] == "validation failed: expect_column_values_to_be_finite(original_score) (NaN or infinite)"
    assert q["a.json[5]"] == "validation failed: expect_column_values_to_not_be_null(model)"
    assert q["a.json[6]"] == ("validation failed: expect_column_values_to_be_unique"
                              "(source_id+benchmark+model+sample_id)")
    res = {(r["source_id"], r["expectation"], r["column_name"]): r for r in a.validation.to_pylist()}
    assert a.validation.schema == VALIDATION_SCHEMA
    conf = res[("a", "expect_column_values_to_be_between", "confidence")]
    assert (conf["success"], conf["unexpected_count"], conf["element_count"]) == (False, 2, 8)
    assert "1.5" in conf["detail"]
    assert all(r["success"] for r in b.validation.to_pylist())
    assert {r["engine"] for r in a.validation.to_pylist()} == {"great_expectations", "arrow"}


def test_real_outputs_pass_and_results_are_stored(shared_data, tmp_path):
    res = read_target(shared_data / "mmlu_pro_tiger")
    assert len(res.batches) == 4
    with CatalogWriter(tmp_path / "c.duckdb") as w:
        for b in res.batches:
            assert b.validation is not None and all(b.validation["success"].to_pylist())
            w.load(b, "r1")
        w.load(res.batches[0], "r2")  # a re-load replaces that source's results, never duplicates them
        for name, table in derived_tables(w.con, [0.0, 0.75]).items():
            w.replace_table(name, table)
        per_source = w.con.sql("SELECT source_id, count(*), min(element_count), bool_and(success) "
                               "FROM validation_results GROUP BY 1 ORDER BY 1").fetchall()
        assert len(per_source) == 4
        assert all(n == 12 and rows == 308 and ok for _, n, rows, ok in per_source)
        summary = w.con.sql("SELECT suite, sum(rows_checked), sum(rows_unexpected) FROM validation_summary "
                            "GROUP BY 1 ORDER BY 1").fetchall()
        assert summary == [("canonical_responses", 12 * 4 * 308, 0), ("canonical_scores", 10 * 8, 0)]


def test_scores_suite_reports_impossible_rates_and_inverted_intervals():
    t = pa.table({
        "benchmark": ["b"] * 3, "grader": ["g"] * 3, "model": ["m1", "m2", "m2"], "threshold": [0.0, 0.5, 0.5],
        "accuracy": [0.5, 1.5, 0.2], "error_rate": [0.5, 0.0, 0.8], "abstention_rate": [0.0, 0.0, 0.0],
        "ci_low": [0.4, 0.1, 0.9], "ci_high": [0.6, 0.3, 0.1],
    })
    out = {(r["expectation"], r["column_name"]): r for r in validate_scores(t).to_pylist()}
    assert out[("expect_column_values_to_be_between", "accuracy")]["unexpected_count"] == 1
    assert out[("expect_column_values_to_be_unique", "benchmark+grader+model+threshold")]["unexpected_count"] == 2
    assert out[("expect_column_pair_values_a_to_be_greater_than_b", "ci_high>=ci_low")]["unexpected_count"] == 1
    assert out[("expect_column_values_to_be_between", "error_rate")]["success"] is True


def test_key_uniqueness_holds_across_chunks():
    """A table assembled from chunks (as concat_tables builds it) is one key space, not one per chunk."""
    a = _batch("a", 4)
    first, second = a.responses.slice(0, 2), a.responses.slice(0, 3)  # rows 0, 1 twice, row 2 once
    a.responses = pa.concat_tables([first, second])
    a.locators = pa.array([f"a.json[{i}]" for i in range(5)])
    a.provenance = Provenance(**{**a.provenance.__dict__, "n_read": 5})
    validate_batches([a])
    a.check_reconciled()
    assert a.responses["sample_id"].to_pylist() == ["0", "1", "2"]
    assert a.quarantine["locator"].to_pylist() == ["a.json[2]", "a.json[3]"]
    assert set(a.quarantine["reason"].to_pylist()) == {
        "validation failed: expect_column_values_to_be_unique(source_id+benchmark+model+sample_id)"}
