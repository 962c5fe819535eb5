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
                     help="files or folders of published outputs, or manifest source names; "
                          "none = every source in the manifest")
    db(run)
    run.add_argument("--report", default=DEFAULT_REPORT, help=f"HTML report path (default: {DEFAULT_REPORT})")
    thresholds(run)
    run.add_argument("--mirror", metavar="DIR",
                     help="read manifest sources from DIR/<name> instead of downloading them (offline, CI)")
    _orchestration_options(run)

    ing = add("ingest", "read published outputs into the catalog (format auto-detected)",
              "bench-audit ingest ../shared/data/truthfulqa_multi --db audit.duckdb")
    ing.add_argument("sources", nargs="+", metavar="SOURCE", help="files or folders, or manifest source names")
    db(ing)
    ing.add_argument("--mirror", metavar="DIR", help="where manifest sources are mirrored")
    ing.add_argument("--full-refresh", action="store_true", help="read every source even if its content is unchanged")

    cls = add("classify", "classify each (benchmark, grader) grading scheme from its evidence; prints the census",
              "bench-audit classify --db audit.duckdb")
    db(cls)

    rs = add("rescore", "re-score every model at each confidence target, with bootstrap CIs and ranks",
             "bench-audit rescore --db audit.duckdb --thresholds 0,0.5,0.9")
    db(rs)
    thresholds(rs)

    rep = add("report", "write the self-contained HTML report from the catalog",
              "bench-audit report --db audit.duckdb --out audit.html")
    db(rep)
    rep.add_argument("--out", required=True, help="the HTML file to write")

    q = add("query", "run read-only SQL on the catalog (tables: responses, scores, grading_schemes, ...; "
                     "views: leaderboard, rank_shift, grading_census, source_reconciliation)",
            "bench-audit query \"select * from leaderboard where threshold = 0.75\" --db audit.duckdb --format csv")
    q.add_argument("sql", help="one SQL statement; the catalog is opened read-only")
    db(q)
    q.add_argument("--format", choices=["table", "csv", "json"], default="table")

    src = add("sources", "list the recognised source formats (and the default manifest sources)",
              "bench-audit sources --manifest")
    src.add_argument("--manifest", action="store_true", help="list the default public sources instead")
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
                        lock_wait=args.lock_wait)
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
    from flows.audit import classify

    classify.fn(args.db)
    return cmd_query(argparse.Namespace(sql="select * from grading_census", db=args.db, format="table"))


def cmd_rescore(args: argparse.Namespace) -> int:
    from audit.scoring import parse_thresholds
    from flows.audit import rescore

    scores = rescore.fn(args.db, parse_thresholds(args.thresholds))
    print(f"{scores.num_rows:,} score rows written to {args.db}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from flows.audit import render_report

    print(render_report.fn(args.db, args.out))
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
    if args.manifest:
        from audit.sources.manifest import manifest

        for s in manifest():
            print(f"{s['name']:<24} {s.get('description', '')}\n{'':<24} {s.get('base_url', '')}")
        return 0
    from audit.sources import adapters

    for name, a in adapters().items():
        print(f"{name:<24} {a.description}\n{'':<24} e.g. {a.example}")
    return 0


COMMANDS = {"run": cmd_run, "ingest": cmd_ingest, "classify": cmd_classify, "rescore": cmd_rescore,
            "report": cmd_report, "query": cmd_query, "sources": cmd_sources}

if __name__ == "__main__":
    raise SystemExit(main())
