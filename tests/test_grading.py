import pytest

from audit.grading.classify import classify_catalog
from audit.grading.combine import classify_unit
from audit.grading.curated import table2
from audit.grading.taxonomy import Evidence, implied_threshold
from catalog.writer import CatalogWriter

# The paper's Table 2 (SPEC.md): benchmark -> (binary grading?, IDK credit)
TABLE2 = {
    "gpqa": (True, "none"), "mmlu_pro": (True, "none"), "ifeval": (True, "none"), "omni_math": (True, "none"),
    "wildbench": (False, "partial"), "bbh": (True, "none"), "math_l5": (True, "none"), "musr": (True, "none"),
    "swebench_verified": (True, "none"), "hle": (True, "none"),
}


@pytest.fixture
def classified(db):
    with CatalogWriter(db) as w:
        schemes, evidence = classify_catalog(w.con)
    return {(r["benchmark"], r["grader"]): r for r in schemes.to_pylist()}, evidence


def test_table2_rows_come_out_as_the_paper_says(classified):
    rows, _ = classified
    assert {r["benchmark"] for r in table2()} == set(TABLE2)
    for bench, (binary, idk) in TABLE2.items():
        r = rows[(bench, "reference")]
        assert (r["binary_grading"], r["idk_credit"]) == (binary, idk), bench
        assert r["rewards_guessing"] is True, bench  # the paper's point: all ten reward guessing
        assert "curated" in r["evidence_kinds"]


def test_facts_beyond_table2(classified):
    rows, _ = classified
    assert rows[("simpleqa", "reference")]["scheme"] == "abstention_tracked_zero"
    tqa = rows[("truthfulqa_gen", "reference")]
    assert (tqa["scheme"], tqa["idk_credit"], tqa["rewards_guessing"]) == ("abstention_credited", "full", False)


def test_same_benchmark_two_graders(db):
    with CatalogWriter(db) as w:
        w.con.execute("""INSERT INTO responses (source_id, benchmark, grader, model, sample_id, outcome, original_score)
                         VALUES ('s', 'mmlu_pro', 'mmlu_pro_official', 'm', '1', 'correct', 1),
                                ('s', 'mmlu_pro', 'lm_eval/mmlu_pro/exact_match', 'm', '1', 'wrong', 0)""")
        schemes, _ = classify_catalog(w.con)
    rows = {r["grader"]: r for r in schemes.to_pylist() if r["benchmark"] == "mmlu_pro"}
    assert rows["mmlu_pro_official"]["scheme"] == "binary_chance_fallback"
    assert rows["mmlu_pro_official"]["idk_credit"] == "chance"
    assert rows["lm_eval/mmlu_pro/exact_match"]["idk_credit"] == "none"


def test_conflicting_evidence_is_kept_not_dropped():
    c = classify_unit([
        Evidence("curated", "b", "g", scheme="binary_exact", idk_credit="none", score_correct=1, score_abstain=0,
                 score_wrong=0, citation="doc"),
        Evidence("empirical", "b", "g", idk_credit="full", detail="abstentions scored 1"),
    ])
    assert c.idk_credit == "none"
    assert c.conflicts == [{"field": "idk_credit", "decided": "none", "evidence_kind": "empirical", "says": "full",
                            "detail": "abstentions scored 1", "citation": None}]


def test_implied_threshold():
    assert implied_threshold(1, 0, 0) == 0
    assert implied_threshold(1, 0, -3) == pytest.approx(0.75)
    assert implied_threshold(1, 1, 0) == 1


def test_curated_registry_is_complete_and_cited():
    from audit.grading.curated import entries
    from audit.grading.taxonomy import GRADER_KINDS, IDK_CREDITS, SCHEMES

    required = set(TABLE2) | {"simpleqa", "truthfulqa_mc1", "truthfulqa_mc2", "truthfulqa_gen", "mmlu", "hellaswag",
                              "arc_challenge", "gsm8k", "humaneval", "alpaca_eval"}
    ref = {e["benchmark"]: e for e in entries() if e["grader"] == "reference"}
    assert required <= set(ref)
    for e in entries():
        assert len(e["citation"]) > 20, e
        assert e["scheme"] in SCHEMES and e["idk_credit"] in IDK_CREDITS and e["grader_kind"] in GRADER_KINDS, e
    for b in TABLE2:  # each Table 2 row cites the paper and the benchmark's own description of its grader
        assert "2509.04664" in ref[b]["citation"] and ref[b].get("source"), b


def test_empirical_evidence_sees_a_grader_that_guesses_for_the_model(db):
    # 100 unparsed answers on a 10-option benchmark, 10 of them scored correct by the source: chance level
    rows = [("s", "mmlu_pro", "g", "m", f"u{i}", None, "wrong", 1.0 if i < 10 else 0.0) for i in range(100)]
    rows += [("s", "mmlu_pro", "g", "m", f"c{i}", "A", "correct", 1.0) for i in range(50)]
    rows += [("s", "mmlu_pro", "g", "m", f"w{i}", "B", "wrong", 0.0) for i in range(50)]
    rows += [("s", "gpqa", "h", "m", f"u{i}", None, "wrong", 0.0) for i in range(100)]  # unparsed = wrong
    rows += [("s", "gpqa", "h", "m", f"c{i}", "A", "correct", 1.0) for i in range(10)]
    import pyarrow as pa

    t = pa.Table.from_pylist([dict(zip(["source_id", "benchmark", "grader", "model", "sample_id",
                                        "extracted_answer", "outcome", "original_score"], r)) for r in rows])
    with CatalogWriter(db) as w:
        w.con.execute("INSERT INTO benchmarks VALUES ('mmlu_pro', 'MMLU-Pro', 10), ('gpqa', 'GPQA', 4)")
        w.con.register("t", t)
        w.con.execute("INSERT INTO responses BY NAME SELECT * FROM t")
        from audit.grading.empirical import empirical_evidence

        ev = {e.grader: e for e in empirical_evidence(w.con)}
    assert ev["g"].idk_credit == "chance" and "100 unparsed answers scored 0.1" in ev["g"].detail
    assert ev["h"].idk_credit == "none" and "100 unparsed answers scored 0 on average (like wrong" in ev["h"].detail
