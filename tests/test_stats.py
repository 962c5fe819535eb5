"""The meta-analysis statistics (audit/stats.py) on small catalogs with known answers."""

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from audit.analysis import derived_tables
from audit.stats import _ranks, _tau, pairwise_table, rank_tables, sign_test_p
from catalog.writer import CatalogWriter


def _catalog(models: dict[str, list[str]]) -> duckdb.DuckDBPyConnection:
    """A responses table holding, per model, one outcome per sample (sample i = the i-th outcome)."""
    rows = [(f"src-{m}", "bench", "grader", m, f"s{i:04d}", o) for m, outs in models.items() for i, o in
            enumerate(outs)]
    con = CatalogWriter(":memory:").con  # the real schema, every migration applied
    con.register("_r", pa.table({k: pa.array([r[j] for r in rows], pa.string()) for j, k in enumerate(
        ["source_id", "benchmark", "grader", "model", "sample_id", "outcome"])}))
    con.execute("INSERT INTO responses BY NAME SELECT * FROM _r")
    con.unregister("_r")
    return con


def _outcomes(c: int, w: int, a: int) -> list[str]:
    return ["correct"] * c + ["wrong"] * w + ["abstained"] * a


def simpleqa() -> duckdb.DuckDBPyConnection:
    # SPEC.md's published illustration: gpt-5-thinking-mini 22/26/52 (acc/err/abstain %), o4-mini 24/75/1.
    return _catalog({"gpt-5-thinking-mini": _outcomes(22, 26, 52), "o4-mini": _outcomes(24, 75, 1)})


def test_simpleqa_illustration_flips_rank_with_a_real_shift_and_a_priced_premium():
    t = derived_tables(simpleqa(), [0, 0.5])
    scores = {(r["model"], r["threshold"]): r for r in t["scores"].to_pylist()}
    assert scores[("gpt-5-thinking-mini", 0.5)]["score"] == pytest.approx(-0.04)
    assert scores[("o4-mini", 0.5)]["score"] == pytest.approx(-0.51)
    rs = {(r["model"], r["threshold"]): r for r in t["rank_stability"].to_pylist()}
    mini = rs[("gpt-5-thinking-mini", 0.5)]
    assert (mini["rank_binary"], mini["rank"], mini["places_gained"]) == (2, 1, 1)
    assert mini["p_rank1"] > 0.99  # 0.47 score points apart at t = 0.5: not noise
    # but at t = 0 o4-mini leads by two samples (s0022, s0023; the samples are paired), and a resample that
    # draws neither ties them: the shift is real in 1 - 0.98^100 of the draws
    assert mini["p_shift"] == pytest.approx(1 - 0.98 ** 100, abs=0.03)
    assert rs[("o4-mini", 0.0)]["p_shift"] == 1.0  # t = 0 against itself
    agree = {r["threshold"]: r for r in t["leaderboard_agreement"].to_pylist()}
    assert agree[0.0]["kendall_tau"] == 1.0 and agree[0.5]["kendall_tau"] == -1.0
    assert agree[0.5]["n_discordant"] == 1
    gp = {r["model"]: r for r in t["guessing_premium"].to_pylist()}
    assert gp["o4-mini"]["premium"] == pytest.approx(0.75)  # penalty 1 x error rate 0.75
    assert gp["gpt-5-thinking-mini"]["premium"] == pytest.approx(0.26)
    assert gp["o4-mini"]["relative_premium"] == pytest.approx((0.75 - 0.26) / 2)
    assert gp["o4-mini"]["break_even_t"] == pytest.approx(24 / 99)
    assert gp["o4-mini"]["premium_ci_low"] < 0.75 < gp["o4-mini"]["premium_ci_high"]
    pw = [r for r in t["pairwise"].to_pylist() if r["threshold"] == 0.5][0]
    assert (pw["model_a"], pw["model_b"]) == ("gpt-5-thinking-mini", "o4-mini")
    assert pw["diff"] == pytest.approx(-0.04 + 0.51)
    assert pw["ci_low"] > 0 and pw["prob_a_better"] > 0.99


def test_paired_interval_uses_the_pairing():
    # two models that agree on 190 of 200 samples: their scores' own CIs are ~0.14 wide, the paired
    # difference's CI must be far narrower (the shared samples cancel)
    base = _outcomes(100, 90, 0)
    a = base + ["correct"] * 10
    b = base + ["wrong"] * 10
    p = pairwise_table(_catalog({"a": a, "b": b}), [0.0], n_boot=2000)
    r = p.to_pylist()[0]
    assert r["n_shared"] == 200 and r["diff"] == pytest.approx(0.05)
    assert r["n_a_better"] == 10 and r["n_b_better"] == 0
    assert 0 < r["ci_low"] < 0.05 < r["ci_high"] < 0.09
    assert r["sign_p"] == pytest.approx(2 * 0.5 ** 10)


def test_pairwise_compares_only_shared_samples():
    con = _catalog({"a": _outcomes(5, 5, 0), "b": _outcomes(3, 0, 0)})  # b answered only s0000..s0002
    r = pairwise_table(con, [0.5]).to_pylist()[0]
    assert r["n_shared"] == 3 and r["score_a"] == 1.0 and r["score_b"] == 1.0 and r["diff"] == 0.0


def test_sign_test_exact_values():
    assert sign_test_p(np.array([9]), np.array([1]))[0] == pytest.approx(2 * 11 / 1024)
    assert sign_test_p(np.array([5]), np.array([5]))[0] == 1.0
    assert sign_test_p(np.array([0]), np.array([0]))[0] == 1.0
    assert sign_test_p(np.array([300]), np.array([200]))[0] < 1e-5


def test_kendall_tau_b_and_competition_ranks():
    tau, conc, disc, n0 = _tau(np.array([1.0, 2, 3, 4]), np.array([1.0, 3, 2, 4]))
    assert (tau, conc, disc, n0) == (pytest.approx(4 / 6), 5, 1, 6)
    tau, *_ = _tau(np.array([1.0, 1, 2]), np.array([1.0, 2, 3]))  # one tie in x
    assert tau == pytest.approx(2 / np.sqrt(2 * 3))
    assert _ranks(np.array([0.5, 0.9, 0.5, 0.1])).tolist() == [2, 1, 2, 4]


def test_rank_tables_are_reproducible_and_agree_with_the_score_ranks():
    con = _catalog({"m1": _outcomes(60, 40, 0), "m2": _outcomes(50, 0, 50), "m3": _outcomes(55, 30, 15)})
    r1, a1 = rank_tables(con, [0, 0.5, 0.75], n_boot=500, seed=3)
    r2, a2 = rank_tables(con, [0, 0.5, 0.75], n_boot=500, seed=3)
    assert r1.equals(r2) and a1.equals(a2)
    t = derived_tables(con, [0, 0.5, 0.75])
    want = {(r["model"], r["threshold"]): r["rank"] for r in t["scores"].to_pylist()}
    assert {(r["model"], r["threshold"]): r["rank"] for r in r1.to_pylist()} == want
    for r in r1.to_pylist():
        assert 1 <= r["rank_ci_low"] <= r["rank_ci_high"] <= 3 and 1 <= r["mean_rank"] <= 3
        assert 0 <= r["p_shift"] <= 1 and 0 <= r["p_rank1"] <= 1
    # m2 (never wrong) climbs from last to first once a wrong answer costs something
    m2 = {r["threshold"]: r for r in r1.to_pylist() if r["model"] == "m2"}
    assert m2[0.0]["rank"] == 3 and m2[0.5]["rank"] == 1 and m2[0.5]["places_gained"] == 2


def test_empty_catalog_gives_empty_tables():
    con = _catalog({})
    t = derived_tables(con, [0, 0.5])
    assert all(tab.num_rows == 0 for tab in t.values())


def test_sorted_ranks_equal_the_pairwise_definition():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 5, size=(50, 3, 9)) / 4  # many ties
    brute = 1 + (s[..., None, :] > s[..., :, None]).sum(axis=-1)
    assert (_ranks(s) == brute).all()


def test_unit_results_do_not_depend_on_other_units():
    one = _catalog({"a": _outcomes(30, 20, 10), "b": _outcomes(25, 10, 25)})
    two = _catalog({"a": _outcomes(30, 20, 10), "b": _outcomes(25, 10, 25)})
    two.execute("INSERT INTO responses BY NAME SELECT source_id, 'another' AS benchmark, grader, model, sample_id, "
                "outcome FROM responses")
    # ("another" sorts before "bench": drawing both units from one generator would shift bench's draws). The
    # flows re-score each benchmark on its own; `bench-audit rescore` does the whole catalog: same intervals.
    for fn in (lambda c: pairwise_table(c, [0, 0.5]), lambda c: rank_tables(c, [0, 0.5])[0],
               lambda c: derived_tables(c, [0, 0.5])["scores"],
               lambda c: derived_tables(c, [0, 0.5])["guessing_premium"]):
        t1 = fn(one)
        t2 = fn(two)
        t2 = t2.filter(pc.equal(t2["benchmark"], "bench"))
        assert t1.num_rows and t1.equals(t2)


def test_holm_adjustment_matches_a_hand_computed_example():
    from audit.stats import holm_adjust
    # family 0 (interleaved with family 1): sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005 = 0.02, 3 x 0.01 = 0.03,
    # 2 x 0.03 = 0.06, max(0.06, 1 x 0.04) = 0.06; family 1: 2 x 0.5 = 1.0, max(1.0, 0.6) = 1.0; NaN stays NaN
    p = np.array([0.01, 0.5, 0.04, np.nan, 0.03, 0.6, 0.005])
    fam = np.array([0, 1, 0, 0, 0, 1, 0])
    adj = holm_adjust(p, fam)
    assert adj[[0, 2, 4, 6]] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adj[[1, 5]] == pytest.approx([1.0, 1.0]) and np.isnan(adj[3])
    assert np.isnan(holm_adjust(np.array([np.nan]), np.array([0]))).all()


def test_pairwise_sign_tests_are_holm_adjusted_per_unit_and_threshold():
    # three models, one unit: three pairs per threshold, each family of 3 tests adjusted on its own
    base = _outcomes(100, 90, 0)
    con = _catalog({"a": base + ["correct"] * 10, "b": base + ["wrong"] * 10, "c": base + ["correct"] * 5 + ["wrong"] * 5})
    rows = pairwise_table(con, [0.0, 0.5], n_boot=0).to_pylist()
    assert len(rows) == 6
    for t in (0.0, 0.5):
        fam = sorted((r["sign_p"], r["sign_p_holm"]) for r in rows if r["threshold"] == t)
        raw = [p for p, _ in fam]
        expect = np.maximum.accumulate(np.minimum(1.0, np.array([3, 2, 1]) * np.array(raw)))
        assert [h for _, h in fam] == pytest.approx(list(expect))
        assert all(h >= p for p, h in fam)


def test_scores_equal_in_exact_arithmetic_tie_in_both_rankings():
    # at t = 0.9 the penalty is 9.000000000000002: m1 (10 correct, 1 wrong of 11) and m2 (1 correct, 10 abstained)
    # both score exactly 1/11, but the floating-point scores differ in the 17th digit
    con = _catalog({"m1": _outcomes(10, 1, 0), "m2": _outcomes(1, 0, 10), "m3": _outcomes(0, 11, 0)})
    t = derived_tables(con, [0.9])
    s = {r["model"]: r for r in t["scores"].to_pylist()}
    assert s["m1"]["score"] != s["m2"]["score"]  # the floating-point noise is there
    assert (s["m1"]["rank"], s["m2"]["rank"], s["m3"]["rank"]) == (1, 1, 3)
    r = {x["model"]: x["rank"] for x in rank_tables(con, [0.9], n_boot=10)[0].to_pylist()}
    assert r == {"m1": 1, "m2": 1, "m3": 3}
