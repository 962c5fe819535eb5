"""The report on the real corpus (`bench-audit run` on mmlu_pro_tiger + truthfulqa_multi), checked as text, as
Markdown, as Prefect artifact payloads, and in a real headless Chromium (Debian's package, installed here)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import duckdb
import pytest

from corpus import tampered_mmlu_pro

from audit.cli import main

SECTIONS = ["summary", "leaderboards", "meta-analysis", "grading", "calibration", "data-quality", "provenance"]
EVIL_OUTPUT = "I don't know <script>document.title='owned'</script> sorry"
EVIL_MODEL = "evil <img src=x onerror=\"document.title='img'\"> model"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed with apt-get when absent. Skips only where apt itself is unavailable."""
    if not Path("/usr/bin/chromium").exists():
        apt = shutil.which("apt-get")
        if not apt:
            pytest.skip("no /usr/bin/chromium and no apt-get to install Debian's chromium: browser check not run")
        sudo = ["sudo", "-n"] if os.geteuid() != 0 and shutil.which("sudo") else []
        install, update = [*sudo, apt, "install", "-y", "chromium"], [*sudo, apt, "update"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        res = subprocess.run(install, capture_output=True, text=True, env=env, timeout=1200)
        if res.returncode != 0:  # a stale or missing package index: refresh it once
            subprocess.run(update, capture_output=True, text=True, env=env, timeout=600)
            res = subprocess.run(install, capture_output=True, text=True, env=env, timeout=1200)
        assert res.returncode == 0, f"apt-get install -y chromium failed:\n{res.stderr[-3000:]}"
    return "/usr/bin/chromium"


@pytest.fixture(scope="module")
def audited(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    # one malformed record, quarantined with a reason
    mmlu, _ = tampered_mmlu_pro(shared_data, tmp / "inputs" / "mmlu", {"question_id": 1, "broken": "<b>bold</b>"})
    # an lm-evaluation-harness --log_samples file whose output and model name try to inject markup
    evil = tmp / "inputs" / "evil__model"
    evil.mkdir()
    ts = "2024-01-01T00-00-00"
    (evil / f"samples_gsm8k_{ts}.jsonl").write_text("".join(json.dumps({
        "doc_id": i, "doc": {"question": f"{i}+1?"}, "target": str(i + 1), "arguments": {}, "resps": [["x"]],
        "filtered_resps": [EVIL_OUTPUT if i == 0 else str(i + 1)], "exact_match": 0.0 if i == 0 else 1.0}) + "\n"
        for i in range(3)))
    (evil / f"results_{ts}.json").write_text(json.dumps({"results": {"gsm8k": {"exact_match,none": 0.67}},
                                                         "model_name": EVIL_MODEL}))
    db, report = tmp / "a.duckdb", tmp / "a.html"
    assert main(["run", str(mmlu), str(shared_data / "truthfulqa_multi"), str(evil), "--db", str(db),
                 "--report", str(report)]) == 0
    return db, report, tmp


def _q(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def test_every_section_with_real_numbers(audited):
    db, report, _ = audited
    page = report.read_text()
    for s in SECTIONS:
        assert f"<h2 id={s}>" in page
    # every score of every model at every threshold, with its CI, as the catalog holds it
    scores = _q(db, "SELECT rank, score, ci_low, ci_high FROM scores")
    assert len(scores) == (4 + 3 + 3 + 1) * 4  # MMLU-Pro, TruthfulQA by lm-eval and by people, injected
    for rank, score, lo, hi in scores:
        assert f"#{rank} {score:+.3f} [{lo:+.3f}, {hi:+.3f}]" in page
    assert "#1 +0.614" in page  # gemini-1.5-flash-002 on MMLU-Pro: 189 / 308 correct
    # rank shifts with their probability, Kendall tau, paired comparisons, guessing premium
    assert _q(db, "SELECT count(*) FROM rank_stability")[0][0] == 11 * 4
    assert _q(db, "SELECT count(*) FROM pairwise")[0][0] == (6 + 3 + 3) * 4
    moved = _q(db, "SELECT model, threshold, rank, places_gained, p_shift FROM rank_stability "
                   "WHERE benchmark = 'truthfulqa_gen' AND grader LIKE 'lm_eval/%' AND places_gained <> 0 "
                   "ORDER BY threshold LIMIT 1")
    model, t, rank, gained, p = moved[0]
    assert f"#{rank} ({gained:+d}) \u00b7 P(shift) {p:.3f}" in page
    tau = _q(db, "SELECT kendall_tau FROM leaderboard_agreement WHERE benchmark = 'truthfulqa_gen' "
                 "AND grader LIKE 'lm_eval/%' AND threshold = 0.9")[0][0]
    assert f"{tau:+.3f}" in page and tau < 1  # the tie at t = 0 breaks under a penalty
    prem = _q(db, "SELECT premium, premium_ci_low, premium_ci_high FROM guessing_premium WHERE threshold = 0.75 "
                  "AND model = 'Mistral-7B-Instruct-v0.2'")[0]
    assert f"{prem[0]:+.3f} [{prem[1]:+.3f}, {prem[2]:+.3f}]" in page
    assert "Paired comparisons on shared samples" in page and "sign test p" in page
    # grading census, data quality, provenance
    census = _q(db, "SELECT * FROM grading_census")
    assert census and f"<td>{census[0][0]}</td>" in page
    assert "Grading: " in page and "Table 2, replicated" in page
    reason = _q(db, "SELECT reason FROM quarantine")[0][0]
    assert reason.split(":")[0].replace("'", "&#x27;") in page
    sha = _q(db, "SELECT sha256 FROM sources WHERE source_id LIKE '%Meta-Llama-3-70B%' LIMIT 1")[0][0]
    assert sha in page
    assert page.count("<svg") >= 2 * 3 + 1  # two charts per benchmark unit + the premium chart


def test_untrusted_text_is_escaped_everywhere(audited):
    _, report, tmp = audited
    page = report.read_text()
    assert "<script" not in page and "<img" not in page
    assert "I don&#x27;t know &lt;script&gt;document.title=&#x27;owned&#x27;&lt;/script&gt;" in page
    assert "evil &lt;img src=x onerror=&quot;document.title=&#x27;img&#x27;&quot;&gt; model" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page  # the quarantined raw record


def test_markdown_variant_and_artifacts(audited, capsys):
    db, _, tmp = audited
    out = tmp / "report.md"
    assert main(["report", "--db", str(db), "--out", str(out), "--format", "md"]) == 0
    md = out.read_text()
    for title in ("## Summary", "## Per benchmark", "## Across benchmarks", "## Grading census",
                  "## Calibration", "## Data quality", "## Provenance"):
        assert title in md
    assert "<script" not in md and "<img" not in md and "&lt;script&gt;" in md
    assert re.search(r"\| gemini-1\.5-flash-002 \| 61\.4% \| 38\.6% \|", md)

    from audit.report.markdown import report_artifacts

    con = duckdb.connect(str(db), read_only=True)
    try:
        art = report_artifacts(con)
    finally:
        con.close()
    assert art["markdown"].startswith("# bench-audit report")
    tables = art["tables"]
    assert {"bench-audit-summary-units", "bench-audit-guessing-premium", "bench-audit-model-movement",
            "bench-audit-table2", "bench-audit-grading-census", "bench-audit-sources",
            "bench-audit-provenance"} <= set(tables)
    assert all(re.fullmatch(r"[a-z0-9-]+", k) for k in tables)
    assert len(tables["bench-audit-table2"]) == 10
    assert any("&lt;img" in str(v) for row in tables["bench-audit-model-movement"] for v in row.values())


def test_chromium_renders_the_report_and_runs_no_model_text(audited, chromium, tmp_path):
    from audit.report.browser import dump_dom

    _, report, _ = audited
    # positive control: this browser set-up does execute a page's script, so a script in the report would show
    control = tmp_path / "control.html"
    control.write_text("<!doctype html><title>before</title><script>document.title='owned'</script><p>x</p>")
    assert "<title>owned</title>" in dump_dom(control)

    dom = dump_dom(report)
    assert "<title>bench-audit report</title>" in dom  # unchanged: nothing ran
    for s in SECTIONS:
        assert f'id="{s}"' in dom
    assert dom.count("<svg") >= 7 and "<polyline" in dom and "<rect" in dom
    assert "<script" not in dom and "<img" not in dom
    # the model's output is shown as text inside a <pre>
    assert re.search(r"<pre>I don't know &lt;script&gt;document\.title='owned'&lt;/script&gt; sorry</pre>", dom)


def test_screenshot_command(audited, chromium, tmp_path):
    _, report, _ = audited
    png = tmp_path / "shot.png"
    assert main(["screenshot", "--report", str(report), "--out", str(png), "--width", "1280", "--height",
                 "1600"]) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1280, 1600)
    assert len(data) > 50_000  # a rendered page, not a blank canvas
    assert main(["screenshot", "--report", str(tmp_path / "missing.html"), "--out", str(png)]) == 2


def test_report_published_as_prefect_artifacts(audited):
    """Inside a real flow run (the ephemeral API the `run` above started), the report lands as artifacts."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from audit.report.markdown import publish_report_artifacts

    db, report, _ = audited

    @flow(name="publish-report-test")
    def publish(path: str) -> tuple[list[str], str]:
        from prefect.runtime import flow_run

        con = duckdb.connect(path, read_only=True)
        try:
            return publish_report_artifacts(con, report_path=str(report)), flow_run.id
        finally:
            con.close()

    keys, run_id = publish(str(db))
    assert "bench-audit-report" in keys and "bench-audit-guessing-premium" in keys
    with get_client(sync_client=True) as client:  # this run's artifacts (other flow runs publish the same keys)
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys),
                                                                    flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    by_key = {a.key: a for a in arts}
    assert set(keys) <= set(by_key)
    md = by_key["bench-audit-report"].data
    assert "## Across benchmarks" in md and "<script" not in md and "&lt;script&gt;" in md
    assert by_key["bench-audit-report"].type == "markdown" and by_key["bench-audit-sources"].type == "table"
    assert "gemini-1.5-flash-002" in str(by_key["bench-audit-model-movement"].data)
