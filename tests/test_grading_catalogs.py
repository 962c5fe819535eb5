"""Static evidence from the harness wheels, probes of the real graders, and the census view.

The lm-eval and crfm-helm wheels are fetched once per session with `pip download --no-deps` into the user cache
(or taken from BENCH_AUDIT_LM_EVAL_WHEEL / BENCH_AUDIT_HELM_WHEEL). The package index is part of every machine this
project runs on, so a wheel that cannot be had fails the tests that need it, saying what to do: a skip here would
silently drop the catalog-scale checks.
"""

from __future__ import annotations

import collections
import json

import pyarrow.compute as pc
import pytest

from audit.cli import main
from audit.grading import wheels
from audit.grading.classify import HarnessCatalogs, load_harness_catalogs, store_classification
from audit.grading.probes import Probe, apply_filters, exact_match, run_probes
from audit.grading.static import LmEvalCatalog, helm_run_groups, lm_eval_tasks
from catalog.writer import CatalogWriter


def _wheel(name: str):
    try:
        return wheels.locate(name)
    except wheels.WheelUnavailable as e:
        pytest.fail(f"{name} wheel unavailable: {e} (reach the package index, or point "
                    f"BENCH_AUDIT_{name.upper()}_WHEEL at a downloaded wheel)")


@pytest.fixture(scope="session")
def lm_eval_wheel():
    return _wheel("lm_eval")


@pytest.fixture(scope="session")
def helm_wheel():
    return _wheel("helm")


@pytest.fixture(scope="session")
def lm_eval_catalog(lm_eval_wheel):
    return LmEvalCatalog(wheels.Archive.open(lm_eval_wheel), wheels.version_of("lm_eval"))


@pytest.fixture(scope="session")
def lm_eval_parsed(lm_eval_catalog):
    rows, errors, counts = lm_eval_catalog.entries()
    return {r["task"]: r for r in rows}, errors, counts


@pytest.fixture(scope="session")
def harness(lm_eval_wheel, helm_wheel) -> HarnessCatalogs:
    return load_harness_catalogs(lm_eval_wheel, helm_wheel, download=False)


@pytest.fixture(scope="session")
def probes(harness):
    return {(r["task"], r["filter"], r["instruction"], r["probe_case"]): r for r in harness.probes.to_pylist()}


# -- lm-evaluation-harness catalog --------------------------------------------------------------------------------
def test_whole_lm_eval_catalog_classifies_without_parse_errors(lm_eval_parsed):
    tasks, errors, counts = lm_eval_parsed
    assert errors == []
    assert len(tasks) >= 13_000
    assert counts["group"] > 500 and counts["python_task"] > 0  # groups and Python tasks are told apart
    schemes = collections.Counter(r["scheme"] for r in tasks.values())
    assert schemes["binary_forced_choice"] > 5_000 and schemes["binary_exact"] > 2_000
    assert schemes["unknown"] < 0.01 * len(tasks)  # every task gets a rule; almost all a definite scheme
    assert all(r["rule"] and r["config_path"].startswith("lm_eval/tasks/") for r in tasks.values())


@pytest.mark.parametrize("task, scheme, idk, grader_kind", [
    ("gsm8k", "binary_exact", "none", "rule"),
    ("hellaswag", "binary_forced_choice", "not_expressible", "loglikelihood"),
    ("mmlu_abstract_algebra", "binary_forced_choice", "not_expressible", "loglikelihood"),
    ("truthfulqa_mc1", "binary_forced_choice", "not_expressible", "loglikelihood"),
    ("truthfulqa_mc2", "probabilistic", "not_expressible", "loglikelihood"),
    ("truthfulqa_gen", "continuous_overlap", "conditional", "rule"),
    ("ifeval", "partial_composite", "none", "rule"),
    ("wikitext", "not_applicable", "not_expressible", "loglikelihood"),
    ("leaderboard_mmlu_pro", "binary_forced_choice", "not_expressible", "loglikelihood"),
    ("leaderboard_math_algebra_hard", "binary_exact", "none", "rule"),
    ("bbh_cot_fewshot_date_understanding", "binary_exact", "none", "rule"),
    ("arc_challenge", "binary_forced_choice", "not_expressible", "loglikelihood"),
])
def test_known_tasks_map_to_the_taxonomy(lm_eval_parsed, task, scheme, idk, grader_kind):
    r = lm_eval_parsed[0][task]
    assert (r["scheme"], r["idk_credit"], r["grader_kind"]) == (scheme, idk, grader_kind)


def test_includes_functions_and_defaults_are_resolved(lm_eval_parsed):
    tasks = lm_eval_parsed[0]
    # bbh cot tasks take output_type, metric and filters from an included template
    bbh = tasks["bbh_cot_fewshot_date_understanding"]
    assert bbh["includes"] == ["lm_eval/tasks/bbh/cot_fewshot/_cot_fewshot_template_yaml"]
    assert bbh["filters"] == ["get-answer: regex>take_first"] and not bbh["output_type_defaulted"]
    # !function is recorded by name, never run
    assert tasks["ifeval"]["process_results"] == "utils.process_results"
    assert tasks["truthfulqa_mc2"]["process_results"] == "utils.process_results_mc2"
    defaulted = [r for r in tasks.values() if r["output_type_defaulted"] and r["kind"] == "task"]
    assert defaulted and all(r["output_type"] == "generate_until" for r in defaulted)
    mc_default = [r for r in tasks.values() if r["metrics_defaulted"] and r["output_type"] == "multiple_choice"]
    assert mc_default and all(r["metrics"] == ["acc", "acc_norm"] for r in mc_default)


def _write(root, rel, text):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_yaml_semantics_on_a_folder_in_the_wheel_layout(tmp_path):
    # lm_eval/tasks/<family>/ as the wheel ships it: a template without `task`, leaf tasks including it, a group
    # config, a Python task, a !function, an include cycle and a dangling include.
    t = "lm_eval/tasks/fam/"
    _write(tmp_path, t + "_template_yaml", "output_type: multiple_choice\nmetric_list:\n  - metric: acc\n"
                                            "task_list: [not_inherited]\n")
    _write(tmp_path, t + "a.yaml", "include: _template_yaml\ntask: fam_a\ntag: [fam_tag]\n")
    _write(tmp_path, t + "b.yaml", "include: _template_yaml\ntask: fam_b\noutput_type: generate_until\n"
                                   "metric_list:\n  - metric: exact_match\nprocess_results: !function utils.score\n")
    _write(tmp_path, t + "c.yaml", "task: fam_c\n")  # every default
    _write(tmp_path, t + "dup.yaml", "task: fam_a\noutput_type: loglikelihood_rolling\n")  # first file wins
    _write(tmp_path, t + "_group.yaml", "group: fam\ntask: [fam_a, fam_b]\n")
    _write(tmp_path, t + "py.yaml", "task: fam_py\nclass: !function task.FamTask\n")
    _write(tmp_path, t + "sub/d.yaml", "include: ../_template_yaml\ntask: fam_d\n")  # relative to the file
    _write(tmp_path, t + "cycle1.yaml", "include: cycle2.yaml\ntask: fam_cycle\n")
    _write(tmp_path, t + "cycle2.yaml", "include: cycle1.yaml\n")
    _write(tmp_path, t + "dangling.yaml", "include: missing_yaml\ntask: fam_dangling\n")
    marker = tmp_path / "imported"  # the !function modules exist; reading the catalog must not run them
    for mod in ("utils.py", "task.py"):
        _write(tmp_path, t + mod, f"open({str(marker)!r}, 'w').write('ran')\ndef score(d, r): return {{}}\n"
                                  "class FamTask: pass\n")
    tab, errors, counts = lm_eval_tasks(wheels.Archive.open(tmp_path), "test")
    rows = {r["task"]: r for r in tab.to_pylist()}
    assert set(rows) == {"fam_a", "fam_b", "fam_c", "fam_py", "fam_d"}
    assert counts == {"task": 4, "python_task": 1, "group": 1, "template": 0, "duplicate": 1}
    assert (rows["fam_a"]["scheme"], rows["fam_a"]["metrics"]) == ("binary_forced_choice", ["acc"])
    assert rows["fam_a"]["config_path"] == t + "a.yaml"
    assert (rows["fam_b"]["output_type"], rows["fam_b"]["process_results"], rows["fam_b"]["scheme"]) == \
        ("generate_until", "utils.score", "binary_exact")
    assert (rows["fam_c"]["output_type"], rows["fam_c"]["output_type_defaulted"], rows["fam_c"]["metrics"]) == \
        ("generate_until", True, ["exact_match"])
    assert rows["fam_d"]["includes"] == [t + "_template_yaml"] and rows["fam_d"]["output_type"] == "multiple_choice"
    assert (rows["fam_py"]["kind"], rows["fam_py"]["scheme"], rows["fam_py"]["rule"]) == \
        ("python_task", "unknown", "python_class")
    errs = {e["config_path"]: e["error"] for e in errors.to_pylist()}
    assert "include cycle" in errs[t + "cycle1.yaml"] and "include cycle" in errs[t + "cycle2.yaml"]
    assert "missing_yaml" in errs[t + "dangling.yaml"]
    assert not marker.exists()


def test_helm_run_groups_name_their_main_metric(helm_wheel):
    tab, errors = helm_run_groups(wheels.Archive.open(helm_wheel), wheels.version_of("helm"))
    rows = {r["task"]: r for r in tab.to_pylist()}
    assert errors.num_rows == 0 and len(rows) >= 400
    assert rows["mmlu"]["primary_metric"] == "exact_match" and rows["mmlu"]["scheme"] == "binary_exact"
    assert (rows["wildbench"]["scheme"], rows["wildbench"]["grader_kind"]) == ("lm_judge_scalar", "lm_judge")
    assert rows["omni_math"]["scheme"] == "binary_lm_judge"
    assert rows["narrative_qa"]["scheme"] == "continuous_overlap"  # f1_score
    assert "core_scenarios" not in rows  # a group of groups is not a leaf


# -- probes ---------------------------------------------------------------------------------------------------------
def test_filters_and_exact_match_follow_the_harness():
    steps = [{"function": "regex", "group_select": -1, "regex_pattern": "(-?[$0-9.,]{2,})|(-?[0-9]+)"},
             {"function": "take_first"}]
    assert apply_filters(steps, "3 apples and 4 pears make 7") == "7"  # tuple groups: first non-empty, last match
    assert apply_filters([{"function": "regex", "regex_pattern": "#### (\\d+)"}], "no number") == "[invalid]"
    assert apply_filters([{"function": "regex", "regex_pattern": "x(\\d)", "fallback": "NA"}], "y") == "NA"
    assert exact_match("$1,000.", "gold text #### 1000", regexes_to_ignore=[",", "\\$", "(?s).*#### ", "\\.$"]) == 1
    assert exact_match("Paris", "paris") == 0 and exact_match("Paris", "paris", ignore_case=True) == 1
    assert exact_match("(A)", "A", ignore_punctuation=True) == 1


def test_probes_of_real_graders(probes, harness):
    for task, filt, instr in [("gsm8k", "strict-match", None), ("gsm8k", "flexible-extract", None),
                              ("bbh_cot_fewshot_date_understanding", "get-answer", None),
                              ("hendrycks_math_algebra", None, None),
                              ("ifeval", None, "punctuation:no_comma")]:
        assert probes[(task, filt, instr, "correct")]["score"] == 1.0, task  # positive control
        assert probes[(task, filt, instr, "wrong")]["score"] == 0.0, task
        assert not probes[(task, filt, instr, "correct")]["void"]
    for task, filt in [("gsm8k", "strict-match"), ("bbh_cot_fewshot_date_understanding", "get-answer"),
                       ("hendrycks_math_algebra", None)]:
        assert probes[(task, filt, None, "idk")]["score"] == 0.0  # an IDK scores like a wrong answer
    assert probes[("gsm8k", "strict-match", None, "idk")]["extracted"] == "[invalid]"
    ev = {e.grader: e for e in harness.probe_evidence}
    gsm = ev["lm_eval/gsm8k/exact_match"]
    assert (gsm.score_correct, gsm.score_abstain, gsm.score_wrong, gsm.idk_credit) == (1, 0, 0, "none")


def test_probes_show_the_known_surprises(probes, harness):
    # IFEval passes an "I don't know" on instructions it happens to satisfy, fails it on others
    assert probes[("ifeval", None, "punctuation:no_comma", "idk")]["score"] == 1.0
    assert probes[("ifeval", None, "keywords:forbidden_words", "idk")]["score"] == 1.0
    assert probes[("ifeval", None, "detectable_format:number_highlighted_sections", "idk")]["score"] == 0.0
    # TruthfulQA generation credits "I have no comment." as a true answer
    assert probes[("truthfulqa_gen", None, None, "no_comment")]["score"] == 1.0
    assert probes[("truthfulqa_gen", None, None, "wrong")]["score"] == 0.0
    ev = {e.grader: e for e in harness.probe_evidence}
    assert ev["lm_eval/ifeval/prompt_level_strict_acc"].idk_credit == "conditional"
    tqa = ev["lm_eval/truthfulqa_gen/bleu_acc"]
    assert (tqa.scheme, tqa.idk_credit, tqa.score_abstain) == ("abstention_credited", "full", 1.0)
    # sentence counting needs nltk's punkt_tab data: never downloaded; without it the probe is void, with a reason
    s = probes[("ifeval", None, "length_constraints:number_sentences", "correct")]
    assert (s["void"] and "punkt" in s["note"]) or s["score"] == 1.0


def test_a_failed_positive_control_voids_the_probe(lm_eval_catalog):
    bad = Probe("gsm8k", "exact_match", gold="#### 5", correct="#### 6", wrong="#### 7")
    res = run_probes(lm_eval_catalog, (bad,))
    assert res.rows and all(r["void"] for r in res.rows)
    assert "positive control" in res.rows[0]["note"]
    assert res.evidence == []


# -- stored, shown, census --------------------------------------------------------------------------------------------
def test_census_view_and_conflicts_in_the_catalog(db, harness):
    with CatalogWriter(db) as w:
        store_classification(w, harness)
        census = w.con.sql("SELECT * FROM grading_census").fetchall()
        cols = w.con.sql("SELECT * FROM grading_census").columns
        lm = w.con.sql("SELECT count(*) FROM harness_tasks WHERE catalog = 'lm_eval'").fetchall()[0][0]
        conflicts = dict(w.con.sql("SELECT grader, conflicts FROM grading_schemes WHERE conflicts IS NOT NULL")
                         .fetchall())
        probe_units = w.con.sql("SELECT count(DISTINCT grader) FROM grading_probes WHERE NOT void").fetchall()[0][0]
        flat = w.con.sql("SELECT grader, field, evidence_kind, says FROM grading_conflicts").fetchall()
    assert cols == ["population", "scheme", "idk_credit", "n_units", "n_benchmarks", "n_rewarding_guessing", "share"]
    by_pop = collections.defaultdict(int)
    shares = collections.defaultdict(float)
    for pop, _, _, n, *_rest, share in census:
        by_pop[pop] += n
        shares[pop] += share
    assert by_pop[f"lm_eval {wheels.version_of('lm_eval')}"] == lm >= 13_000
    assert by_pop["audited units"] > 0 and any(p.startswith("helm ") for p in by_pop)
    assert all(abs(s - 1) < 0.01 for s in shares.values())
    assert census[0][0] == "audited units"
    assert probe_units >= 5
    # the static rule (overlap) and the probe (abstention credited) disagree on TruthfulQA: kept, not resolved
    assert ("lm_eval/truthfulqa_gen/bleu_acc", "scheme", "static", "continuous_overlap") in flat
    assert ("lm_eval/ifeval/prompt_level_strict_acc", "idk_credit", "curated", "none") in flat
    assert len(flat) == sum(len(json.loads(c)) for c in conflicts.values())
    tqa = json.loads(conflicts["lm_eval/truthfulqa_gen/bleu_acc"])
    assert {"field": "scheme", "decided": "abstention_credited", "evidence_kind": "static",
            "says": "continuous_overlap"}.items() <= tqa[0].items()


def test_classify_command_prints_the_census(tmp_path, capsys, lm_eval_wheel, helm_wheel):
    db = tmp_path / "c.duckdb"
    with CatalogWriter(db) as w:  # an observed lm-eval unit whose abstentions were scored like correct answers
        w.con.execute("""INSERT INTO responses (source_id, benchmark, grader, model, sample_id, outcome, original_score)
                         VALUES ('s', 'truthfulqa_gen', 'lm_eval/truthfulqa_gen/bleu_acc', 'm', '1', 'correct', 1),
                                ('s', 'truthfulqa_gen', 'lm_eval/truthfulqa_gen/bleu_acc', 'm', '2', 'abstained', 1),
                                ('s', 'truthfulqa_gen', 'lm_eval/truthfulqa_gen/bleu_acc', 'm', '3', 'wrong', 0)""")
    assert main(["classify", "--db", str(db), "--lm-eval-wheel", str(lm_eval_wheel), "--helm-wheel",
                 str(helm_wheel), "--no-download", "--no-probes"]) == 0
    out = capsys.readouterr().out
    assert "with conflicting evidence" in out and "harness tasks (0 parse errors)" in out
    # curated and empirical say full credit; the static rule says conditional: shown, not resolved silently
    assert "conflicting evidence (kept" in out
    assert any("lm_eval/truthfulqa_gen/bleu_acc" in line and "conditional" in line for line in out.splitlines())
    assert f"lm_eval {wheels.version_of('lm_eval')}" in out and "binary_forced_choice" in out


def test_missing_or_broken_wheel_is_a_note_not_a_crash(tmp_path):
    h = load_harness_catalogs(tmp_path / "nothing.whl", tmp_path / "nothing.whl", download=False)
    assert h.tasks.num_rows == 0 and len(h.notes) == 2 and "nothing.whl" in h.notes[0]
    broken = tmp_path / "lm_eval-0.4.13-py3-none-any.whl"
    broken.write_bytes(b"PK\x03\x04 truncated")
    h = load_harness_catalogs(broken, tmp_path / "nothing.whl", download=False)
    assert h.tasks.num_rows == 0 and "not a wheel" in h.notes[0]


def test_empirical_evidence_from_real_truthfulqa_outputs(shared_data, db, harness):
    from audit.grading.classify import classify_tables
    from audit.ingest import read_target

    with CatalogWriter(db) as w:
        for b in read_target(shared_data / "truthfulqa_multi").batches:
            w.load(b)
        tables = classify_tables(w.con, harness)
    ev = [e for e in tables["grading_evidence"].to_pylist()
          if e["grader"] == "lm_eval/truthfulqa-multi_gen_en/bleu_acc"]
    kinds = {e["kind"]: e for e in ev}
    assert set(kinds) == {"curated", "static", "empirical"}
    emp = kinds["empirical"]
    assert "original scores take 2 value(s): {0, 1}" in emp["detail"]
    assert "detected abstentions scored" in emp["detail"] and emp["score_abstain"] > emp["score_wrong"] == 0
    assert kinds["static"]["citation"].endswith("truthfulqa-multi_gen_en.yaml")
    assert pc.sum(pc.equal(tables["grading_schemes"]["grader"], "lm_eval/truthfulqa-multi_gen_en/bleu_acc")).as_py() == 1


# The paper's Table 2: benchmark -> (binary grading?, IDK credit). An implementation where abstention cannot be
# expressed (log-likelihood choice) gives an IDK no credit either: not_expressible counts as "none" here.
TABLE2 = {
    "gpqa": (True, "none"), "mmlu_pro": (True, "none"), "ifeval": (True, "none"), "omni_math": (True, "none"),
    "wildbench": (False, "partial"), "bbh": (True, "none"), "math_l5": (True, "none"), "musr": (True, "none"),
    "swebench_verified": (True, "none"), "hle": (True, "none"),
}


def test_table2_rows_from_harness_evidence(db, harness):
    from audit.grading.curated import entries

    with CatalogWriter(db) as w:
        tables = store_classification(w, harness)
    rows = {(r["benchmark"], r["grader"]): r for r in tables["grading_schemes"].to_pylist()}
    impl = {e["benchmark"]: e.get("implementations") or [] for e in entries() if "table2" in e}
    assert sum(1 for b in TABLE2 if impl[b]) >= 8  # all but SWE-bench and HLE have a harness implementation
    for bench, (binary, idk) in TABLE2.items():
        ref = rows[(bench, "reference")]
        assert (ref["binary_grading"], ref["idk_credit"]) == (binary, idk), bench
        for grader in impl[bench]:
            r = rows[(bench, grader)]
            assert "static" in r["evidence_kinds"], (bench, grader)
            got = (r["binary_grading"], "none" if r["idk_credit"] == "not_expressible" else r["idk_credit"])
            assert got == (binary, idk), (bench, grader, r["scheme"], r["idk_credit"])
            assert r["rewards_guessing"] is True, (bench, grader)
    # MATH level 5 also has a probe of the Open LLM Leaderboard grader itself: IDK 0 = wrong 0, t* = 0
    math = rows[("math_l5", "lm_eval/leaderboard_math_algebra_hard/exact_match")]
    assert math["evidence_kinds"][0] == "probe" and math["implied_t"] == 0


def test_static_evidence_reaches_every_adapter_naming_of_a_harness_grader(harness):
    from audit.grading.static import static_evidence

    units = [("bbh", "open_llm_leaderboard/leaderboard_bbh_date_understanding/acc_norm"),
             ("wildbench", "helm/wildbench_score_rescaled"),  # HELM adapter: helm/<metric>
             ("gpqa", "helm/gpqa"),  # a run group by name
             ("gsm8k", "lm_eval/gsm8k/exact_match"),
             ("nothing", "helm/no_such_metric"), ("x", "inspect/x/accuracy")]
    ev = {e.grader: e for e in static_evidence(harness.tasks, units)}
    assert set(ev) == {u[1] for u in units[:4]}
    assert ev["open_llm_leaderboard/leaderboard_bbh_date_understanding/acc_norm"].scheme == "binary_forced_choice"
    assert ev["helm/wildbench_score_rescaled"].scheme == "lm_judge_scalar"
    assert "schema_" in ev["helm/gpqa"].citation and ev["lm_eval/gsm8k/exact_match"].scheme == "binary_exact"
