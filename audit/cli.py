"""bench-audit command line. `bench-audit --help` lists the commands; each has its own --help with examples."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Sequence

DEFAULT_DB = "bench-audit.duckdb"
DEFAULT_REPORT = "bench-audit-report.html"
DEFAULT_THRESHOLDS = "0,0.5,0.75,0.9"

EPILOG = textwrap.dedent("""\
    The score at confidence target t: correct +1, abstain 0, wrong -t/(1-t). t=0 is plain accuracy;
    at t=0.75 a wrong answer costs 3, so answering pays only when the model is more than 75% sure.

    examples:
      bench-audit run --mirror ../shared/data               audit the default sources from a local mirror
      bench-audit run ./my_outputs --db audit.duckdb         audit your own published outputs
      bench-audit run --mirror ../shared/data --task-runner dask --dask-workers 4   fan out on a local Dask cluster
      bench-audit query "select * from leaderboard where threshold = 0.75" --db audit.duckdb
      bench-audit sources                                    which formats are recognised
    """)


def _prefect_defaults() -> None:
    """Quiet, local Prefect unless the user configured otherwise (must run before prefect is imported)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench-audit", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Audit how benchmarks grade abstention, and re-score published per-sample outputs under "
                    "explicit confidence targets. Everything lands in a DuckDB catalog and an HTML report.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help: str, example: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    def db(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--db", default=DEFAULT_DB, help=f"the DuckDB catalog file (default: {DEFAULT_DB})")

    def thresholds(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--thresholds", default=DEFAULT_THRESHOLDS,
                        help=f"comma-separated confidence targets t in [0, 1) (default: {DEFAULT_THRESHOLDS})")

    run = add("run", "the whole audit as a Prefect flow: ingest, classify, re-score, report",
              "bench-audit run ../shared/data/mmlu_pro_tiger --db audit.duckdb --report audit.html")
    run.add_argument("sources", nargs="*", metavar="SOURCE",
                     help="files or folders of published outputs, http(s) URLs, or manifest source names; "
                          "none = every source in the manifest")
    db(run)
    run.add_argument("--report", default=DEFAULT_REPORT, help=f"HTML report path (default: {DEFAULT_REPORT})")
    thresholds(run)
    run.add_argument("--mirror", metavar="DIR",
                     help="read manifest sources from DIR/<name> instead of downloading them (offline, CI); "
                          "DIR may also be an http(s) URL laid out the same way")
    _orchestration_options(run)

    ing = add("ingest", "read published outputs into the catalog (format auto-detected)",
              "bench-audit ingest ../shared/data/truthfulqa_multi --db audit.duckdb\n\n"
              "Units (usually one model's file) are read $BENCH_AUDIT_READ_THREADS at a time (default: the cores,\n"
              "at most 4) and loaded as they come in, ~1M records per transaction ($BENCH_AUDIT_LOAD_GROUP_ROWS);\n"
              "memory stays near 1.3 GB even at 100M rows (docs/performance.md). Unchanged units are skipped;\n"
              "a killed run resumes where it stopped.")
    ing.add_argument("sources", nargs="+", metavar="SOURCE",
                     help="files or folders, http(s) URLs (downloaded into the cache), or manifest source names")
    db(ing)
    ing.add_argument("--mirror", metavar="DIR", help="where manifest sources are mirrored (a folder or an http(s) URL)")
    ing.add_argument("--full-refresh", action="store_true", help="read every source even if its content is unchanged")

    cls = add("classify", "classify each (benchmark, grader) grading scheme from its evidence; prints the census",
              "bench-audit classify --db audit.duckdb --lm-eval-wheel ~/wheels/lm_eval-0.4.13-py3-none-any.whl")
    db(cls)
    cls.add_argument("--lm-eval-wheel", metavar="PATH", help="lm-eval wheel or unpacked folder (default: "
                     "$BENCH_AUDIT_LM_EVAL_WHEEL, the user cache, else `pip download lm-eval --no-deps`)")
    cls.add_argument("--helm-wheel", metavar="PATH", help="crfm-helm wheel or folder (same defaults)")
    cls.add_argument("--no-download", action="store_true", help="never call pip; use given or cached wheels")
    cls.add_argument("--no-harness", action="store_true", help="curated and empirical evidence only")
    cls.add_argument("--no-probes", action="store_true", help="skip running the lm-eval graders on probes")

    rs = add("rescore", "re-score every model at each confidence target, with bootstrap CIs and ranks",
             "bench-audit rescore --db audit.duckdb --thresholds 0,0.5,0.9")
    db(rs)
    thresholds(rs)

    rep = add("report", "write the self-contained HTML report from the catalog",
              "bench-audit report --db audit.duckdb --out audit.html")
    db(rep)
    rep.add_argument("--out", required=True, help="the file to write")
    rep.add_argument("--format", choices=["html", "md"], default="html",
                     help="html (self-contained, charts inline) or md (Markdown for a paper or an issue)")

    shot = add("screenshot", "render a report in headless Chromium and save a PNG (Debian package `chromium`)",
               "bench-audit screenshot --report audit.html --out audit.png")
    shot.add_argument("--report", required=True, help="the HTML report to render")
    shot.add_argument("--out", required=True, help="the PNG to write")
    shot.add_argument("--width", type=int, default=1366, help="window width in pixels (default: 1366, a laptop)")
    shot.add_argument("--height", type=int, default=3000, help="how much of the page to capture (default: 3000)")

    q = add("query", "run read-only SQL on the catalog (tables: responses, scores, grading_schemes, ...; "
                     "views: leaderboard, rank_shift, grading_census, source_reconciliation)",
            "bench-audit query \"select * from leaderboard where threshold = 0.75\" --db audit.duckdb --format csv")
    q.add_argument("sql", help="one SQL statement; the catalog is opened read-only")
    db(q)
    q.add_argument("--format", choices=["table", "csv", "json"], default="table")

    exp = add("export", "write the catalog's responses in another tool's format (eee = Every Eval Ever instance JSONL)",
              "bench-audit export --format eee --db audit.duckdb --out eee/")
    exp.add_argument("--format", choices=["eee"], default="eee", help="output format (default: eee)")
    db(exp)
    exp.add_argument("--out", required=True, help="the folder to write into")

    src = add("sources", "list the recognised source formats (and the default manifest sources)",
              "bench-audit sources --manifest")
    src.add_argument("--manifest", action="store_true", help="list the default public sources instead")
    src.add_argument("--cache", action="store_true", help="show the download cache: where it is, what it holds")
    src.add_argument("--clear-cache", action="store_true", help="delete the download cache (re-downloaded on demand)")

    # abstention detector evaluation (issue 5)
    ev = add("eval-detector", "measure the abstention detector's precision and recall on the labelled sets",
             "bench-audit eval-detector --data ../shared/data")
    ev.add_argument("--data", default="../shared/data", help="folder holding the labelled sets (default: %(default)s)")
    ev.add_argument("--format", choices=["table", "csv", "json"], default="table")
    ev.add_argument("--errors", metavar="SET", help="also print the false positives / negatives of sets whose name "
                                                    "contains SET")
    return p


def _orchestration_options(run: argparse.ArgumentParser) -> None:
    """Fan-out, incremental and locking options of `run` (docs/orchestration.md)."""
    g = run.add_argument_group("orchestration (docs/orchestration.md)")
    g.add_argument("--task-runner", choices=["threads", "dask"], default=None,
                   help="run the per-source and per-benchmark tasks on threads (default) or Dask "
                        "(default from $BENCH_AUDIT_TASK_RUNNER)")
    g.add_argument("--dask-address", metavar="ADDR", help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                   "(default: a local cluster)")
    g.add_argument("--dask-workers", type=int, metavar="N", help="local Dask cluster size (default: 2)")
    g.add_argument("--full-refresh", action="store_true", help="read every source even if its content is unchanged")
    g.add_argument("--staging", metavar="DIR", help="where parallel tasks stage parquet shards (default: "
                   "<db>.staging beside the catalog; must be shared with remote Dask workers)")
    g.add_argument("--lock-wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for another run holding the catalog (default: fail at once)")
    c = run.add_argument_group("grading evidence (docs/grading.md)")
    c.add_argument("--harness-catalogs", action=argparse.BooleanOptionalAction, default=None,
                   help="read the lm-eval and HELM task catalogs from their wheels (pip download, cached) "
                        "(default: on, unless $BENCH_AUDIT_HARNESS_CATALOGS=0)")
    c.add_argument("--probes", action=argparse.BooleanOptionalAction, default=None,
                   help="run the offline lm-eval graders on correct / abstaining / wrong answers "
                        "(default: on, unless $BENCH_AUDIT_PROBES=0)")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, PermissionError) as e:
        print(f"bench-audit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # the catalog's own errors: say what happened, not a traceback
        from catalog.writer import CatalogLocked
        import duckdb

        if isinstance(e, (CatalogLocked, duckdb.Error)):
            print(f"bench-audit {args.command}: error: {e}", file=sys.stderr)
            return 2
        raise


def cmd_run(args: argparse.Namespace) -> int:
    from audit.scoring import parse_thresholds

    thresholds = parse_thresholds(args.thresholds)
    _prefect_defaults()
    from flows.audit import audit_flow

    result = audit_flow(sources=args.sources, db=args.db, report=args.report, thresholds=thresholds,
                        mirror=args.mirror, task_runner=args.task_runner, dask_address=args.dask_address,
                        dask_workers=args.dask_workers, full_refresh=args.full_refresh, staging=args.staging,
                        lock_wait=args.lock_wait, harness_catalogs=args.harness_catalogs, probes=args.probes)
    _print_summary(result)
    print(f"catalog: {result['db']}\nreport:  {result['report']}")
    return 0


def _print_summary(summary: dict) -> None:
    print(f"sources: {summary['sources']}  records read: {summary['read']:,}  accepted: {summary['accepted']:,}  "
          f"quarantined: {summary['quarantined']:,}")
    if summary.get("unrecognised") or summary.get("failed"):
        print(f"not read: {summary.get('unrecognised', 0)} unrecognised file(s), {summary.get('failed', 0)} "
              f"unavailable source(s): see the report's data-quality section or `select * from source_failures`")
    if summary.get("units_unchanged"):
        print(f"{summary['sources_unchanged']} sources unchanged, skipped (content hash as last loaded; "
              "--full-refresh reads them again)")
    if summary.get("staged_reused"):
        print(f"{summary['staged_reused']} unit(s) staged by an interrupted run reused, not read again")
    if summary.get("sources_removed"):
        print(f"{summary['sources_removed']} source(s) removed: their files are gone from the input")


def cmd_ingest(args: argparse.Namespace) -> int:
    from flows.audit import ingest_sources

    _print_summary(ingest_sources(args.sources, args.db, args.mirror, full_refresh=args.full_refresh))
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from audit.grading.classify import load_harness_catalogs, store_classification
    from catalog.writer import CatalogWriter

    harness = None if args.no_harness else load_harness_catalogs(
        args.lm_eval_wheel, args.helm_wheel, download=not args.no_download, probes=not args.no_probes)
    with CatalogWriter(args.db) as w:
        tables = store_classification(w, harness)
    for note in harness.notes if harness else []:
        print(f"note: {note}", file=sys.stderr)
    n_conf = sum(1 for c in tables["grading_schemes"].column("conflicts").to_pylist() if c)
    extra = (f"; {tables['harness_tasks'].num_rows:,} harness tasks ({tables['harness_parse_errors'].num_rows} "
             f"parse errors), {tables['grading_probes'].num_rows} probe rows") if harness else ""
    print(f"{tables['grading_schemes'].num_rows} units classified, {n_conf} with conflicting evidence{extra}")
    if n_conf:
        print("conflicting evidence (kept; see the grading_conflicts view):")
        cmd_query(argparse.Namespace(db=args.db, format="table", sql="SELECT benchmark, grader, field, decided, "
                                     "evidence_kind, says FROM grading_conflicts"))
    return cmd_query(argparse.Namespace(sql="select * from grading_census", db=args.db, format="table"))


def cmd_rescore(args: argparse.Namespace) -> int:
    from audit.scoring import parse_thresholds
    from flows.audit import rescore

    scores = rescore.fn(args.db, parse_thresholds(args.thresholds))
    print(f"{scores.num_rows:,} score rows written to {args.db}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if getattr(args, "format", "html") == "md":
        from audit.report.markdown import write_markdown
        from catalog.writer import CatalogWriter

        with CatalogWriter(args.db) as w:
            print(write_markdown(w.con, args.out))
        return 0
    from flows.audit import render_report

    print(render_report.fn(args.db, args.out))
    return 0


def cmd_screenshot(args: argparse.Namespace) -> int:
    from audit.report.browser import ChromiumError, screenshot

    try:
        print(screenshot(args.report, args.out, width=args.width, height=args.height))
    except ChromiumError as e:
        print(f"bench-audit screenshot: error: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from catalog.writer import connect_reader

    con = connect_reader(args.db)
    try:
        rel = con.sql(args.sql)
        if rel is None:
            print("statement returned no rows", file=sys.stderr)
            return 0
        cols, rows = rel.columns, rel.fetchall()
    finally:
        con.close()
    sys.stdout.write(format_rows(cols, rows, args.format))
    return 0


def format_rows(cols: list[str], rows: list[tuple], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([dict(zip(cols, r)) for r in rows], default=str, ensure_ascii=False, indent=1) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        w.writerows(rows)
        return buf.getvalue()
    cells = [[("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)) for v in r] for r in rows]
    widths = [min(60, max([len(c)] + [len(r[i]) for r in cells])) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v[:60].ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    out = [line(cols), line(["-" * w for w in widths])] + [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"


def cmd_sources(args: argparse.Namespace) -> int:
    """Formats (name, one line, example path), or with --manifest the default sources and where they come from."""
    import shutil

    if args.cache or args.clear_cache:
        from audit.fetch import Cache

        cache = Cache()
        if args.clear_cache:
            cache.clear()
            print(f"cleared {cache.root}")
            return 0
        u = cache.usage()
        print(f"cache: {cache.root} (set BENCH_AUDIT_CACHE to move it)\n"
              f"  {u['blobs']} file(s), {u['blobs_bytes']:,} bytes; {u['partial']} partial download(s), "
              f"{u['partial_bytes']:,} bytes (resumed on the next run)")
        return 0
    width = max(60, min(shutil.get_terminal_size((100, 20)).columns, 120))
    wrap = lambda text, indent: textwrap.fill(text, width, initial_indent=indent,  # noqa: E731
                                              subsequent_indent=" " * len(indent))
    if args.manifest:
        from audit.fetch import default_cache_dir
        from audit.sources import adapters
        from audit.sources.manifest import entries

        known = adapters()
        for e in entries():
            missing = "" if e.adapter in known else "  (adapter not in this build: would be reported unrecognised)"
            print(f"{e.name}  [{e.license or 'no license stated'}]")
            print(wrap(e.description, "  "))
            print(f"  {len(e.files)} file(s) from {e.repository or e.base_url} @ {(e.revision or 'unpinned')[:12]}")
            print(f"  read by: {e.adapter}{missing}\n")
        print(wrap("bench-audit run downloads these (cache: " + str(default_cache_dir()) + "); "
                   "--mirror DIR reads them from DIR/<name> instead. Details: docs/sources.md", ""))
        return 0
    from audit.sources import adapters

    items = list(adapters().items())
    pad = max(len(n) for n, _ in items) + 2
    for name, a in items:
        print(f"{name:<{pad}}{a.description}")  # one line each, so `grep` finds a format with its description
        print(f"{'':<{pad}}e.g. {a.example}")
    print(f"\n{len(items)} formats; a file or folder is matched automatically. "
          "Default public sources: bench-audit sources --manifest")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from audit.sources.every_eval_ever import export_eee

    written = export_eee(args.db, args.out)
    for path, n in written:
        print(f"{n:>8,}  {path}")
    print(f"{len(written)} file(s), {sum(n for _, n in written):,} instance(s) written to {args.out}")
    return 0


def cmd_eval_detector(args: argparse.Namespace) -> int:

    from audit.abstention.evaluate import errors, evaluate, labelled_sets

    if not Path(args.data).is_dir():
        raise FileNotFoundError(f"no labelled data at {args.data} (pass --data ../shared/data)")
    sets = labelled_sets(Path(args.data))
    if not sets:
        raise FileNotFoundError(f"none of the labelled sets was found under {args.data}")
    t = evaluate(sets)
    sys.stdout.write(format_rows(t.column_names, [tuple(r.values()) for r in t.to_pylist()], args.format))
    for s in sets:
        if args.errors and args.errors in s.name:
            for kind, reason, text in errors(s):
                print(f"{s.name}\t{kind}\t{reason or ''}\t{(text or '')[:200]!r}")
    return 0


# Every `cmd_<name>` function is the subcommand `<name>` (underscores become dashes).
COMMANDS = {name[4:].replace("_", "-"): fn for name, fn in list(globals().items()) if name.startswith("cmd_")}

if __name__ == "__main__":
    raise SystemExit(main())
