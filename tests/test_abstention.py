import pyarrow as pa
import pytest

from audit.abstention import RuleDetector, assign_outcomes
from audit.records import RESPONSE_SCHEMA

detect = RuleDetector()


@pytest.mark.parametrize("text,rule", [
    ("I don't know", "idk_en"), ("I do not know.", "idk_en"), ("A: I have no comment.", "no_comment_en"),
    ("**Answer:** not sure", "idk_en"), ("It cannot be determined from the information given.", "cannot_answer_en"),
    ("I'm sorry, but I can't help with that.", "refusal_en"), ("I cannot answer that question.", "cannot_answer_en"),
])
def test_abstentions_are_detected_with_their_rule(text, rule):
    hit, reason = detect(pa.array([text]))
    assert hit[0].as_py() and reason[0].as_py() == f"detector:{rule}"


@pytest.mark.parametrize("text", [
    "Paris", "The answer is (C). I don't know why others pick B.", "", None,
    "Not knowing the answer is common, but the capital is Paris.",
])
def test_answers_are_not_abstentions(text):
    hit, reason = detect(pa.array([text], pa.string()))
    assert not hit[0].as_py() and reason[0].as_py() is None


def test_assign_outcomes_prefers_the_extracted_answer_and_keeps_source_labels():
    rows = [
        dict(extracted_answer="C", response="I don't know... so the answer is C", outcome="correct"),
        dict(extracted_answer=None, response="I don't know.", outcome="wrong"),
        dict(extracted_answer=None, response="", outcome="wrong"),  # a format failure stays wrong
        dict(extracted_answer="x", response="x", outcome="abstained", abstention_reason="source:not_attempted"),
    ]
    base = {f.name: None for f in RESPONSE_SCHEMA}
    t = pa.Table.from_pylist([{**base, "source_id": "s", "benchmark": "b", "grader": "g", "model": "m",
                               "sample_id": str(i), **r} for i, r in enumerate(rows)], schema=RESPONSE_SCHEMA)
    out = assign_outcomes(t).to_pylist()
    assert [r["outcome"] for r in out] == ["correct", "abstained", "wrong", "abstained"]
    assert [r["abstention_reason"] for r in out] == [None, "detector:idk_en", None, "source:not_attempted"]
