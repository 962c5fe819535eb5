"""bench-audit at leaderboard scale: ingest and re-score throughput against a floor and against pandas.

Generates a synthetic corpus in the lm-evaluation-harness ``--log_samples`` layout (one folder per model,
``<org>__<model>/samples_<task>_<timestamp>.jsonl`` + ``results_<timestamp>.json``; generate_until records:
doc_id, doc, target, arguments, resps, filtered_resps, filter, metrics, *_hash, exact_match), then measures, each
phase in its own process so each peak RSS is its own:

  floor      DuckDB reads the same files with read_json and groups them itself (count, sum per file);
             also, for reference, DuckDB materialising every record into a table (CREATE TABLE AS read_json)
  ingest     bench-audit: read_target (discover, parse, canonical rows, abstention detection, Great Expectations
             suite) + the single writer loading every batch into a DuckDB catalog (one transaction)
  ingest_flow  what users run: `bench-audit ingest` (flows/audit.py ingest_sources): units read in groups on a
             thread pool (one GE run per group), handed to the writer in memory, loaded in groups while the
             reads go on, unit bookkeeping
  rescore    bench-audit: outcome counts + scores at 5 thresholds with 1,000-resample bootstrap CIs and ranks;
             against the floor's GROUP BY over the same catalog
  pandas     a straightforward pandas implementation of the same ingest (read_json lines=True, outcomes,
             abstention regex) and re-score (groupby, per-model row bootstrap, 1,000 resamples)

Usage (numbers go in docs/performance.md):
    python3 -m uv run python bench/benchmark.py                  # ~2M sample rows (100 models x 20,000)
    python3 -m uv run python bench/benchmark.py --rows 200000 --models 20
    python3 -m uv run python bench/benchmark.py --rows 100000000 --models 4500 --pool 50 --flow-only --out DIR
                                                                 # peak RSS of `bench-audit ingest` at 100M rows
Prints one JSON summary (also written to --out/summary.json). No assertion: targets are reported, not enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TS = "2024-06-01T00-00-00.000000"
TASK = "gsm8k"
THRESHOLDS = [0.0, 0.5, 0.75, 0.9, 0.95]
N_BOOT = 1000
IDK = "I don't know."


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# -- corpus -----------------------------------------------------------------------------------------------------
def _samples(rng, per: int) -> bytes:
    """One model's ``per`` sample records: a skill p, up to 20% abstentions."""
    import numpy as np

    skill = rng.uniform(0.2, 0.9)
    abstain = rng.uniform(0.0, 0.2)
    u = rng.random(per)
    kinds = np.where(u < abstain, 2, np.where(u < abstain + (1 - abstain) * skill, 1, 0))  # 2 idk, 1 right
    wrong = rng.integers(0, 1000, per)
    lines = []
    for i in range(per):
        gold = i % 997
        k = kinds[i]
        if k == 2:
            text, filt, em = IDK, IDK, 0.0
        elif k == 1:
            text, filt, em = f"6 x 7 + {gold - 42} = {gold}. The answer is {gold}.", str(gold), 1.0
        else:
            text, filt, em = f"The answer is {wrong[i]}.", str(wrong[i]), 0.0
        q = f"Item {i}: what is 6 x 7 + {gold - 42}?"
        lines.append(
            '{"doc_id": %d, "doc": {"question": "%s", "answer": "6 x 7 + %d = %d\\n#### %d"}, "target": "%d", '
            '"arguments": {"gen_args_0": {"arg_0": "Question: %s\\nAnswer:", "arg_1": {"until": ["Question:", '
            '"</s>", "<|im_end|>"], "do_sample": false, "temperature": 0.0}}}, "resps": [["%s"]], '
            '"filtered_resps": ["%s"], "filter": "strict-match", "metrics": ["exact_match"], '
            '"doc_hash": "%064x", "prompt_hash": "%064x", "target_hash": "%064x", "exact_match": %.1f}'
            % (i, q, gold - 42, gold, gold, gold, q, text, filt, i, i + 1, gold, em))
    return ("\n".join(lines) + "\n").encode()


def generate(root: Path, rows: int, models: int, seed: int = 0, pool: int = 0) -> dict:
    """``rows`` sample records spread over ``models`` model folders, each with its own ``results_<ts>.json``
    (which names the model: the lm-eval adapter takes the model from it, not from the samples).

    ``pool`` > 0: only ``pool`` distinct samples files are written (beside the corpus, in ``<root>.pool``) and each
    model folder gets a hard link to one of them (model ``m`` -> file ``m % pool``). The reader sees ``models``
    ordinary files under the corpus (a hard link is a file, not a symlink out of the folder), so a corpus of 100M
    rows costs the disk ``pool`` files only. Those files are read from the page cache after the first pass, so
    read speed in this mode is optimistic; it is meant for memory (peak RSS) at scale."""
    import numpy as np

    rng = np.random.default_rng(seed)
    per = rows // models
    t0 = time.perf_counter()
    total_bytes = disk_bytes = 0
    pool_dir = root.with_name(root.name + ".pool")
    pool_files: list[tuple[Path, int]] = []
    if pool:
        pool_dir.mkdir(parents=True, exist_ok=True)
        for k in range(min(pool, models)):
            f = pool_dir / f"samples_{k:04d}.jsonl"
            f.write_bytes(_samples(rng, per))
            pool_files.append((f, f.stat().st_size))
            disk_bytes += f.stat().st_size
    for m in range(models):
        d = root / f"bench-org__model-{m:04d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"results_{TS}.json").write_text(json.dumps({
            "model_name": f"bench-org/model-{m:04d}",
            "config": {"model": "hf", "model_args": f"pretrained=bench-org/model-{m:04d}"},
            "results": {TASK: {"alias": TASK}}}))
        dest = d / f"samples_{TASK}_{TS}.jsonl"
        if pool_files:
            src, size = pool_files[m % len(pool_files)]
            dest.unlink(missing_ok=True)
            os.link(src, dest)
            total_bytes += size
        else:
            data = _samples(rng, per)
            dest.write_bytes(data)
            total_bytes += len(data)
            disk_bytes += len(data)
    return {"rows": per * models, "models": models, "bytes": total_bytes, "disk_bytes": disk_bytes,
            **({"pool": len(pool_files)} if pool else {}), "seconds": time.perf_counter() - t0}


GLOB = f"*/samples_{TASK}_*.jsonl"


# -- phases (each runs in its own process) ----------------------------------------------------------------------
def phase_floor(root: Path, work: Path) -> dict:
    import duckdb

    con = duckdb.connect()
    t0 = time.perf_counter()
    rows = con.sql(f"""
        SELECT filename, count(*) AS n, sum(exact_match) AS n_correct,
               count(*) FILTER (WHERE filtered_resps[1] = '{IDK.replace("'", "''")}') AS n_idk
        FROM read_json('{root}/{GLOB}', format = 'newline_delimited', filename = true)
        GROUP BY filename""").fetchall()
    group_s = time.perf_counter() - t0
    n = sum(r[1] for r in rows)
    out = {"rows": n, "correct": int(sum(r[2] for r in rows)), "abstained": int(sum(r[3] for r in rows)),
           "read_group_s": group_s}
    if os.environ.get("BENCH_FLOOR_MATERIALISE"):
        db = work / "floor.duckdb"
        con2 = duckdb.connect(str(db))
        t0 = time.perf_counter()
        con2.execute(f"CREATE TABLE t AS SELECT * FROM read_json('{root}/{GLOB}', format = 'newline_delimited', "
                     "filename = true)")
        out["read_materialise_s"] = time.perf_counter() - t0
        con2.close()
        db.unlink()
    return {**out, "peak_rss_mb": peak_rss_mb()}


def phase_ingest(root: Path, work: Path) -> dict:
    sys.path.insert(0, str(REPO))
    from audit.ingest import read_target
    from audit.validation import validate_batches
    from catalog.writer import CatalogWriter

    t0 = time.perf_counter()
    import audit.validation as v

    v._gx()  # GE import + context: a once-per-process cost, reported apart
    setup_s = time.perf_counter() - t0
    db = work / "catalog.duckdb"
    for f in (db, db.with_name(db.name + ".wal")):
        f.unlink(missing_ok=True)
    t0 = time.perf_counter()
    res = read_target(root, validate=False)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    validate_batches(res.batches)
    validate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with CatalogWriter(db) as w:
        w.load_many(res.batches, "bench")  # one transaction, one INSERT per table
    load_s = time.perf_counter() - t0
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    counts = dict(con.sql("SELECT outcome, count(*) FROM responses GROUP BY 1").fetchall())
    vectorised = sum("read vectorised (pyarrow.json)" in b.notes for b in res.batches)
    con.close()
    return {"rows": res.n_read, "accepted": sum(b.responses.num_rows for b in res.batches),
            "quarantined": sum(b.quarantine.num_rows for b in res.batches),
            "correct": counts.get("correct", 0), "abstained": counts.get("abstained", 0),
            "files_read_vectorised": f"{vectorised}/{len(res.batches)}",
            "ge_setup_s": setup_s, "read_s": read_s, "validate_s": validate_s, "load_s": load_s,
            "total_s": read_s + validate_s + load_s, "peak_rss_mb": peak_rss_mb()}


def phase_ingest_flow(root: Path, work: Path) -> dict:
    """What a user runs: ``bench-audit ingest <folder>`` (flows/audit.py ``ingest_sources``, the ingest flow without
    the Prefect engine): plan units, fingerprint them, read them in groups on a thread pool (one Great
    Expectations run per group), and hand each read unit to the single writer, which loads them in groups while
    the reads go on and records each unit. Memory is bounded by a few read groups and one load group, not by the
    corpus."""
    sys.path.insert(0, str(REPO))
    import duckdb

    import audit.validation as v
    from flows.audit import ingest_sources

    v._gx()
    db = work / "flow.duckdb"
    for f in (db, db.with_name(db.name + ".wal")):
        f.unlink(missing_ok=True)
    t0 = time.perf_counter()
    summary = ingest_sources([str(root)], str(db), full_refresh=True)
    total = time.perf_counter() - t0
    con = duckdb.connect(str(db), read_only=True)
    counts = dict(con.sql("SELECT outcome, count(*) FROM responses GROUP BY 1").fetchall())
    (models,), = con.sql("SELECT count(DISTINCT model) FROM responses").fetchall()
    con.close()
    db_mb = db.stat().st_size / 2**20
    db.unlink()
    return {"rows": summary["read"], "accepted": summary["accepted"], "quarantined": summary["quarantined"],
            "catalog_rows": sum(counts.values()), "catalog_models": models, "catalog_mb": db_mb,
            "correct": counts.get("correct", 0), "abstained": counts.get("abstained", 0),
            "total_s": total, "peak_rss_mb": peak_rss_mb()}


def phase_rescore(root: Path, work: Path) -> dict:
    sys.path.insert(0, str(REPO))
    import duckdb

    from audit.scoring import outcome_counts, score_table

    import statistics

    con = duckdb.connect(str(work / "catalog.duckdb"), read_only=True)

    def floor() -> list:
        return con.sql("SELECT benchmark, grader, model, count(*), count(*) FILTER (WHERE outcome = 'correct'), "
                       "count(*) FILTER (WHERE outcome = 'wrong') FROM responses GROUP BY ALL").fetchall()

    def rescore():
        return score_table(outcome_counts(con), THRESHOLDS, n_boot=N_BOOT)

    times: dict[str, list[float]] = {"floor": [], "rescore": []}
    for i in range(6):  # the first round is a warm-up (first query on a cold connection, numpy first use)
        for name, fn in (("floor", floor), ("rescore", rescore)):
            t0 = time.perf_counter()
            out = fn()
            if i:
                times[name].append(time.perf_counter() - t0)
            if name == "floor":
                groups = out
            else:
                scores = out
    assert scores.num_rows == len(groups) * len(THRESHOLDS)
    return {"groups": len(groups), "score_rows": scores.num_rows,
            "catalog_group_by_s": statistics.median(times["floor"]), "rescore_s": statistics.median(times["rescore"]),
            "peak_rss_mb": peak_rss_mb()}


def phase_pandas(root: Path, work: Path) -> dict:
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(REPO))
    from audit.abstention import RULES  # the same rules, applied the pandas way

    t0 = time.perf_counter()
    frames = []
    for f in sorted(root.glob(GLOB)):
        model = json.loads(next(f.parent.glob("results_*.json")).read_text())["model_name"]
        df = pd.read_json(f, lines=True)
        df["model"] = model
        df["response"] = df["filtered_resps"].str[0]
        frames.append(df[["doc_id", "model", "response", "exact_match"]])
    df = pd.concat(frames, ignore_index=True)
    df["outcome"] = np.where(df["exact_match"] >= 1, "correct", "wrong")
    abst = pd.Series(False, index=df.index)
    text = df["response"].astype("string[pyarrow]")  # the rules are RE2: pandas' Arrow strings match them with RE2
    for rule in RULES:
        abst |= text.str.contains(rule.pattern, case=False, regex=True).fillna(False).astype(bool)
    df.loc[abst, "outcome"] = "abstained"
    ingest_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    rows = []
    for model, g in df.groupby("model"):
        oc = g["outcome"].to_numpy()
        c, w = (oc == "correct").astype(float), (oc == "wrong").astype(float)
        idx = rng.integers(0, len(g), size=(N_BOOT, len(g)))
        bc, bw = c[idx].mean(axis=1), w[idx].mean(axis=1)
        for t in THRESHOLDS:
            p = t / (1 - t)
            s = bc - p * bw
            rows.append((model, t, c.mean() - p * w.mean(), *np.quantile(s, [0.025, 0.975])))
    out = pd.DataFrame(rows, columns=["model", "threshold", "score", "lo", "hi"])
    out["rank"] = out.groupby("threshold")["score"].rank(ascending=False, method="min")
    rescore_s = time.perf_counter() - t0
    counts = df["outcome"].value_counts()
    return {"rows": len(df), "correct": int(counts.get("correct", 0)), "abstained": int(counts.get("abstained", 0)),
            "ingest_s": ingest_s, "rescore_s": rescore_s, "score_rows": len(out),
            "peak_rss_mb": peak_rss_mb()}


PHASES = {"floor": phase_floor, "ingest": phase_ingest, "ingest_flow": phase_ingest_flow,
          "rescore": phase_rescore, "pandas": phase_pandas}


def run_phase(name: str, root: Path, work: Path, repeat: int = 1, materialise: bool = False) -> dict:
    """Run a phase ``repeat`` times, each in a fresh process; keep the fastest run (this machine is shared,
    so the minimum is the least disturbed measurement). All runs' times are kept in ``runs_s``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_LOGGING_LEVEL": "WARNING"}
    if materialise:
        env["BENCH_FLOOR_MATERIALISE"] = "1"
    key = {"floor": "read_group_s", "ingest": "total_s", "ingest_flow": "total_s", "rescore": "rescore_s",
           "pandas": "ingest_s"}[name]
    runs = []
    for _ in range(repeat):
        p = subprocess.run([sys.executable, __file__, "--phase", name, "--corpus", str(root), "--out", str(work)],
                           capture_output=True, text=True, env=env)
        if p.returncode:
            raise RuntimeError(f"phase {name} failed:\n{p.stderr[-4000:]}")
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r[key])
    return {**best, "runs_s": [round(r[key], 3) for r in runs], "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000, help="sample rows in the corpus (default 2,000,000)")
    ap.add_argument("--models", type=int, default=100, help="model folders (default 100)")
    ap.add_argument("--out", type=Path, help="work folder (default: a temporary folder, removed afterwards)")
    ap.add_argument("--corpus", type=Path, help="reuse an existing corpus folder instead of generating one")
    ap.add_argument("--skip-pandas", action="store_true", help="do not run the pandas comparison")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of the floor, ingest and rescore phases (fastest kept; default 1)")
    ap.add_argument("--floor-materialise", action="store_true",
                    help="also time DuckDB loading every record into a table (CREATE TABLE AS read_json)")
    ap.add_argument("--pool", type=int, default=0,
                    help="write only this many distinct samples files and hard-link one into each model folder "
                         "(memory at scale without the disk: reads come from the page cache, so speed is optimistic)")
    ap.add_argument("--flow-only", action="store_true",
                    help="run only the ingest_flow phase (`bench-audit ingest`): its peak RSS at scale")
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.phase:
        print(json.dumps(PHASES[args.phase](args.corpus, args.out)))
        return {}

    work = args.out or Path(tempfile.mkdtemp(prefix="bench-audit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        root = args.corpus or work / "corpus"
        gen = None
        if not args.corpus:
            gen = generate(root, args.rows, min(args.models, args.rows), pool=args.pool)
        if args.flow_only:
            flow = run_phase("ingest_flow", root, work, args.repeat)
            summary = {"corpus": gen or {"path": str(root)}, "ingest_flow": flow,
                       "rows_per_s": {"ingest_flow": flow["rows"] / flow["total_s"]},
                       "peak_rss_mb": {"ingest_flow": flow["peak_rss_mb"]},
                       "targets": {"flow ingest peak RSS <= 2 GB": flow["peak_rss_mb"] <= 2048}}
            (work / "summary.json").write_text(json.dumps(summary, indent=1))
            print(json.dumps(summary, indent=1))
            return summary
        floor = run_phase("floor", root, work, args.repeat, args.floor_materialise)
        ingest = run_phase("ingest", root, work, args.repeat)
        flow = run_phase("ingest_flow", root, work, args.repeat)
        rescore = run_phase("rescore", root, work, args.repeat)
        pandas = None if args.skip_pandas else run_phase("pandas", root, work)
        # The three implementations must agree on what they counted, or the timings compare different work.
        agree = {"rows": {floor["rows"], ingest["rows"], flow["rows"]} | ({pandas["rows"]} if pandas else set()),
                 "correct": {floor["correct"], ingest["correct"], flow["correct"]} | ({pandas["correct"]} if pandas else set()),
                 "abstained": {floor["abstained"], ingest["abstained"], flow["abstained"]}
                 | ({pandas["abstained"]} if pandas else set())}
        n = ingest["rows"]
        summary = {
            "corpus": gen or {"rows": n, "path": str(root)},
            "counts_agree": all(len(v) == 1 for v in agree.values()),
            "floor": floor, "ingest": ingest, "ingest_flow": flow, "rescore": rescore, "pandas": pandas,
            "ratios": {
                "ingest_throughput_vs_floor": floor["read_group_s"] / ingest["total_s"],
                "ingest_flow_throughput_vs_floor": floor["read_group_s"] / flow["total_s"],
                **({"ingest_throughput_vs_floor_materialise": floor["read_materialise_s"] / ingest["total_s"]}
                   if "read_materialise_s" in floor else {}),
                "rescore_time_vs_catalog_group_by": rescore["rescore_s"] / rescore["catalog_group_by_s"],
                "rescore_time_vs_floor_read_group": rescore["rescore_s"] / floor["read_group_s"],
                **({"ingest_speedup_vs_pandas": pandas["ingest_s"] / ingest["total_s"],
                    "ingest_flow_speedup_vs_pandas": pandas["ingest_s"] / flow["total_s"],
                    "rescore_speedup_vs_pandas": pandas["rescore_s"] / rescore["rescore_s"]} if pandas else {}),
            },
            "rows_per_s": {"floor": n / floor["read_group_s"], "ingest": n / ingest["total_s"], "ingest_flow": n / flow["total_s"],
                           **({"pandas_ingest": n / pandas["ingest_s"]} if pandas else {})},
            "peak_rss_mb": {"floor": floor["peak_rss_mb"], "ingest": ingest["peak_rss_mb"],
                            "ingest_flow": flow["peak_rss_mb"],
                            "rescore": rescore["peak_rss_mb"], **({"pandas": pandas["peak_rss_mb"]} if pandas else {})},
            "targets": {"ingest >= 0.5 x floor": floor["read_group_s"] / ingest["total_s"] >= 0.5,
                        "rescore <= 2 x floor GROUP BY": rescore["rescore_s"] <= 2 * rescore["catalog_group_by_s"],
                        ">= 10x pandas (ingest, rescore)": bool(pandas) and (
                            pandas["ingest_s"] / ingest["total_s"] >= 10
                            and pandas["rescore_s"] / rescore["rescore_s"] >= 10),
                        "bench-audit peak RSS <= 2 GB": max(ingest["peak_rss_mb"], rescore["peak_rss_mb"]) <= 2048,
                        "flow ingest peak RSS <= 2 GB": flow["peak_rss_mb"] <= 2048},
        }
        (work / "summary.json").write_text(json.dumps(summary, indent=1))
        print(json.dumps(summary, indent=1))
        return summary
    finally:
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
