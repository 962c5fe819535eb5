"""Report sections that depend on what the catalog holds: nothing yet, or other helpers' optional tables."""

from __future__ import annotations

import duckdb
import pytest

from audit.analysis import derived_tables
from audit.grading.classify import classify_catalog
from audit.ingest import read_target
from audit.report.html import render
from audit.report.markdown import render_markdown
from catalog.writer import CatalogWriter

SECTIONS = ["summary", "leaderboards", "meta-analysis", "grading", "calibration", "data-quality", "provenance"]


def test_empty_catalog_renders_every_section(db):
    with CatalogWriter(db) as w:
        page, md = render(w.con), render_markdown(w.con)
    for s in SECTIONS:
        assert f"<h2 id={s}>" in page
    assert "No scores yet" in page and "No scores yet" in md
    assert "No calibration rows in this catalog" in page


@pytest.fixture
def mmlu_catalog(shared_data, db):
    with CatalogWriter(db) as w:
        for batch in read_target(shared_data / "mmlu_pro_tiger").batches:
            w.load(batch, "test")
        schemes, evidence = classify_catalog(w.con)
        w.replace_table("grading_evidence", evidence)
        w.replace_table("grading_schemes", schemes)
        for name, table in derived_tables(w.con, [0, 0.5, 0.75]).items():
            w.replace_table(name, table)
    return db


def test_calibration_and_sweep_render_when_present(mmlu_catalog):
    # the tables the abstention helper creates (shared names in the brief); created here only when absent
    con = duckdb.connect(str(mmlu_catalog))
    try:
        # the abstention helper's schema (migration 020); created here only when that migration is absent
        con.execute("CREATE TABLE IF NOT EXISTS calibration (model VARCHAR, benchmark VARCHAR, grader VARCHAR, "
                    "n BIGINT, accuracy DOUBLE, mean_confidence DOUBLE, overconfidence DOUBLE, ece DOUBLE, "
                    "n_bins INTEGER, brier DOUBLE, aurc DOUBLE)")
        con.execute("CREATE TABLE IF NOT EXISTS threshold_sweep (model VARCHAR, benchmark VARCHAR, grader VARCHAR, "
                    "threshold DOUBLE, n BIGINT, n_answered BIGINT, n_correct BIGINT, n_wrong BIGINT, "
                    "coverage DOUBLE, accuracy DOUBLE, error DOUBLE, abstention_rate DOUBLE, risk DOUBLE, "
                    "score DOUBLE)")
        con.execute("INSERT INTO calibration (model, benchmark, grader, n, accuracy, mean_confidence, "
                    "overconfidence, ece, n_bins, brier, aurc) "
                    "VALUES ('m<1>', 'mmlu_pro', 'lm_eval/x', 308, 0.6, 0.7, 0.1, 0.0731, 10, 0.21, 0.3)")
        con.execute("INSERT INTO threshold_sweep (model, benchmark, grader, threshold, n, n_answered, n_correct, "
                    "n_wrong, coverage, accuracy, error, abstention_rate, risk, score) VALUES "
                    "('m<1>', 'mmlu_pro', 'lm_eval/x', 0.0, 100, 100, 60, 40, 1.0, 0.6, 0.4, 0.0, 0.4, 0.6), "
                    "('m<1>', 'mmlu_pro', 'lm_eval/x', 0.5, 100, 70, 52, 18, 0.7, 0.52, 0.18, 0.3, 0.257, 0.34)")
        page = render(con)
        md = render_markdown(con)
    finally:
        con.close()
    cal = page[page.index("<h2 id=calibration>"):page.index("<h2 id=data-quality>")]
    assert "0.073" in cal and "m&lt;1&gt;" in cal and "<svg" in cal and "<polyline" in cal
    assert "accuracy on answered (1 \u2212 risk) vs coverage" in cal
    assert "No calibration rows" not in cal
    assert "m&lt;1&gt;" in md and "0.073" in md


def test_leaderboard_numbers_match_the_counts(mmlu_catalog):
    con = duckdb.connect(str(mmlu_catalog), read_only=True)
    try:
        page = render(con)
        rows = con.sql("SELECT model, n_correct, n, threshold, score FROM scores").fetchall()
    finally:
        con.close()
    for model, c, n, t, score in rows:
        assert score == pytest.approx((c - t / (1 - t) * (n - c)) / n)  # no abstentions on MMLU-Pro here
        assert f"{score:+.3f}" in page
    assert page.count("<svg") >= 3
