import numpy as np
import pyarrow as pa
import pytest

from audit.scoring import expected_guess_score, parse_thresholds, penalty, score_table
from audit.stats import bootstrap_score_ci


def test_penalty_is_computed_from_the_formula_not_the_papers_prose():
    assert penalty(0.0) == 0.0
    assert penalty(0.5) == 1.0
    assert penalty(0.75) == pytest.approx(3.0)  # the paper's text says "penalty 2" here; 2 is t = 2/3
    assert penalty(2 / 3) == pytest.approx(2.0)
    assert penalty(0.9) == pytest.approx(9.0)
    with pytest.raises(ValueError):
        penalty(1.0)


def _counts(rows):
    names = ["benchmark", "grader", "model", "n", "n_correct", "n_wrong", "n_abstained"]
    return pa.table({k: [r[i] for r in rows] for i, k in enumerate(names)})


def test_published_simpleqa_illustration():
    # SPEC.md: gpt-5-thinking-mini 52% abstain / 22% acc / 26% err; o4-mini 1 / 24 / 75.
    t = score_table(_counts([("simpleqa", "g", "gpt-5-thinking-mini", 100, 22, 26, 52),
                             ("simpleqa", "g", "o4-mini", 100, 24, 75, 1)]), [0, 0.5])
    got = {(r["model"], r["threshold"]): (r["score"], r["rank"]) for r in t.to_pylist()}
    assert got[("o4-mini", 0.0)] == (pytest.approx(0.24), 1)  # binary grading ranks o4-mini first
    assert got[("gpt-5-thinking-mini", 0.5)] == (pytest.approx(-0.04), 1)
    assert got[("o4-mini", 0.5)] == (pytest.approx(-0.51), 2)


def test_rates_ci_and_determinism():
    c = _counts([("b", "g", "m1", 300, 150, 100, 50), ("b", "g", "m2", 10, 10, 0, 0)])
    t1 = score_table(c, [0, 0.75], n_boot=2000, seed=7)
    t2 = score_table(c, [0, 0.75], n_boot=2000, seed=7)
    assert t1.equals(t2)
    for r in t1.to_pylist():
        assert r["ci_low"] <= r["score"] <= r["ci_high"]
        assert r["accuracy"] + r["error_rate"] + r["abstention_rate"] == pytest.approx(1.0)
    m1 = [r for r in t1.to_pylist() if r["model"] == "m1" and r["threshold"] == 0.75][0]
    assert m1["score"] == pytest.approx((150 - 3 * 100) / 300)
    # the bootstrap interval matches the normal approximation of the 3-valued score's standard error
    p = np.array([150, 100, 50]) / 300
    vals = np.array([1.0, -3.0, 0.0])
    se = np.sqrt((p * vals**2).sum() - (p * vals).sum() ** 2) / np.sqrt(300)
    assert (m1["ci_high"] - m1["ci_low"]) == pytest.approx(2 * 1.96 * se, rel=0.1)
    m2 = [r for r in t1.to_pylist() if r["model"] == "m2"]
    assert all(r["ci_low"] == r["ci_high"] == 1.0 for r in m2)  # all correct: no uncertainty in the sample


def test_bootstrap_handles_empty_groups():
    lo, hi = bootstrap_score_ci(np.array([0]), np.array([0]), np.array([0]), np.array([0.0]))
    assert lo.shape == (1, 1) and lo[0, 0] == 0.0 and hi[0, 0] == 0.0


def test_random_guess_expectation():
    assert expected_guess_score(4, 0.0) == pytest.approx(0.25)
    assert expected_guess_score(4, 0.5) == pytest.approx(0.25 - 0.75)
    assert expected_guess_score(10, 0.75) == pytest.approx(0.1 - 0.9 * 3)


@pytest.mark.parametrize("text,expected", [("0,0.5,0.75,0.9", [0, 0.5, 0.75, 0.9]), ("0.9, 0", [0, 0.9])])
def test_parse_thresholds(text, expected):
    assert parse_thresholds(text) == expected


@pytest.mark.parametrize("text", ["", "a,b", "0,1", "-0.1"])
def test_parse_thresholds_rejects_bad_input(text):
    with pytest.raises(ValueError):
        parse_thresholds(text)
