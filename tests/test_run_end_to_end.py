"""`bench-audit run` through the real Prefect flow (ephemeral API), on the real published outputs."""

import csv
import io
import json

import duckdb
import pytest

from corpus import tampered_mmlu_pro

from audit.cli import main

COUNT_TABLES = ["responses", "quarantine", "sources", "scores", "grading_schemes", "grading_evidence", "models",
                "benchmarks", "source_failures"]


def _counts(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in COUNT_TABLES}
    finally:
        con.close()


@pytest.fixture(scope="module")
def audited(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    # a copy of one MMLU-Pro file with a malformed record, plus an output that tries to inject markup
    mmlu, raw = tampered_mmlu_pro(shared_data, tmp / "inputs" / "mmlu", {"question_id": 1, "broken": True})
    inject = tmp / "inputs" / "evil__model"
    inject.mkdir()
    (inject / "samples_gsm8k_2024-01-01T00-00-00.jsonl").write_text(json.dumps({
        "doc_id": 0, "doc": {"question": "1+1?"}, "target": "2", "arguments": {}, "resps": [["x"]],
        "filtered_resps": ["I don't know <script>alert('owned')</script>"], "exact_match": 0.0}) + "\n")
    db, report = tmp / "a.duckdb", tmp / "a.html"
    args = [str(mmlu), str(shared_data / "truthfulqa_multi"), str(inject), "--db", str(db), "--report", str(report),
            "--harness-catalogs", "--probes"]
    assert main(["run", *args]) == 0
    first = _counts(db)
    assert main(["run", *args]) == 0
    return db, report, first, raw


def _query(db, sql, capsys):
    capsys.readouterr()
    assert main(["query", sql, "--db", str(db), "--format", "csv"]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_every_model_scored_at_every_threshold(audited, capsys):
    db, *_ = audited
    rows = _query(db, "select benchmark, model, threshold, score from scores order by 1,2,3", capsys)
    per = {}
    for r in rows:
        per.setdefault(r["benchmark"], {}).setdefault(r["model"], set()).add(float(r["threshold"]))
    assert len(per["mmlu_pro"]) == 4 and len(per["truthfulqa_gen"]) == 3
    assert all(ts == {0.0, 0.5, 0.75, 0.9} for m in per.values() for ts in m.values())


def test_binary_accuracy_equals_pred_equals_answer(audited, shared_data, capsys):
    db, *_ = audited
    rows = _query(db, "select model, accuracy, n, penalty, threshold from scores where benchmark='mmlu_pro'", capsys)
    got = {(r["model"], float(r["threshold"])): r for r in rows}
    for model in ["Meta-Llama-3-70B", "Meta-Llama-3_1-8B-Instruct", "gemini-1.5-flash-002"]:
        src = json.loads((shared_data / "mmlu_pro_tiger" / f"model_outputs_{model}_5shots.json").read_text())
        assert float(got[(model, 0.0)]["accuracy"]) == pytest.approx(sum(r["pred"] == r["answer"] for r in src) / len(src))
    assert float(got[("Meta-Llama-3-70B", 0.75)]["penalty"]) == pytest.approx(3.0)


def test_malformed_record_quarantined_and_counts_reconcile(audited, capsys):
    db, *_ = audited
    q = _query(db, "select source_id, locator, reason from quarantine", capsys)
    assert len(q) == 1 and q[0]["locator"].endswith("[0]") and "answer" in q[0]["reason"]
    recon = _query(db, "select * from source_reconciliation", capsys)
    for r in recon:
        assert int(r["n_read"]) == int(r["n_accepted"]) + int(r["n_quarantined"])
        assert int(r["n_accepted"]) == int(r["rows_in_responses"])
        assert int(r["n_quarantined"]) == int(r["rows_in_quarantine"])
    mistral = [r for r in recon if "Mistral" in r["source_id"]][0]
    assert (mistral["n_read"], mistral["n_accepted"], mistral["n_quarantined"]) == ("308", "307", "1")


def test_rerun_leaves_the_same_row_counts(audited):
    db, _, first, _ = audited
    assert _counts(db) == first
    # MMLU-Pro 4 x 308 (one quarantined), TruthfulQA 3 x 100 lm-eval samples + 300 human labels, the injected row
    assert first["responses"] == 4 * 308 - 1 + 300 + 300 + 1


def test_report_escapes_model_output(audited):
    _, report, *_ = audited
    page = report.read_text()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in page
    for section in ("id=summary", "id=grading", "id=leaderboards", "id=data-quality", "id=provenance"):
        assert section in page


def test_runs_are_recorded(audited, capsys):
    db, *_ = audited
    runs = _query(db, "select command, status from runs", capsys)
    assert [(r["command"], r["status"]) for r in runs] == [("audit", "completed")] * 2


def test_query_is_read_only(audited, capsys):
    db, *_ = audited
    assert main(["query", "delete from responses", "--db", str(db)]) == 2
    assert "read-only" in capsys.readouterr().err.lower()


def test_run_classifies_from_the_harness_catalogs_and_probes(audited, capsys):
    """`run` wires the whole classifier: the lm-eval / HELM wheel catalogs and the grader probes land in the catalog."""
    db, *_ = audited
    tasks = {r["catalog"]: int(r["n"]) for r in _query(
        db, "select catalog, count(*) n from harness_tasks where kind <> 'run_group' group by 1", capsys)}
    assert tasks.get("lm_eval", 0) >= 13_000
    probes = _query(db, "select task, probe_case, score from grading_probes where not void", capsys)
    no_comment = [r for r in probes if r["task"].startswith("truthfulqa_gen") and r["probe_case"] == "no_comment"]
    assert no_comment and all(float(r["score"]) > 0 for r in no_comment)  # TruthfulQA credits "I have no comment"
    census = _query(db, "select population, n_units from grading_census", capsys)
    assert any(r["population"].startswith("lm_eval") for r in census)


def test_run_as_a_process_exits_cleanly(shared_data, tmp_path):
    """The command as users start it, in its own process: exit code 0 and nothing after the summary but the
    paths. (A typing alias over a DuckDB type once kept DuckDB's types alive past its teardown, and nanobind then
    printed ~40 "leaked type/function" lines at every exit.)"""
    import os
    import subprocess
    import sys
    from pathlib import Path

    db, report = tmp_path / "p.duckdb", tmp_path / "p.html"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    res = subprocess.run([sys.executable, "-m", "audit.cli", "run", str(shared_data / "truthfulqa_multi"), "--db",
                          str(db), "--report", str(report), "--no-harness-catalogs"],
                         cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "sources: 4  records read: 600" in res.stdout and report.is_file()
    assert "leaked" not in res.stdout + res.stderr, (res.stdout + res.stderr)[-2000:]
