"""Prefect flows: ingest -> classify -> rescore -> report. Orchestration only; the work lives in ``audit``.

Fan-out (see docs/orchestration.md): ingest units (a source file or folder, usually one model) are read in groups,
one task per group, through ``audit.ingest.read_target`` and each staged as parquet; each benchmark is re-scored
by its own task from a parquet export. Only tasks called inline (in the flow's process) open the catalog, one at
a time: DuckDB allows one writer process. The runner (threads, or Dask) is a flow parameter. Units whose content fingerprint is
unchanged are skipped; staged shards left by a crashed run are reused; a lock file keeps two runs apart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import shutil
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.exceptions import MissingContextError
from prefect.task_runners import ThreadPoolTaskRunner

from audit import benchmarks as bench_registry
from audit.grading.classify import load_harness_catalogs, store_classification
from audit.ingest import finish_reads, read_target, read_threads
from audit.records import SourceBatch
from audit.report.html import write_report
from audit.report.markdown import publish_report_artifacts
from audit.analysis import derived_tables
from audit.scoring import DEFAULT_THRESHOLDS, parse_thresholds
from audit.sources import sha256_of
from audit.sources.manifest import resolve_sources
from catalog.lock import CatalogLock
from catalog.units import interrupt_dead_runs, known_units, prune_units, record_units
from catalog.writer import CatalogWriter, connect_reader
from flows.runners import RunnerSpec
from flows.shards import (Shard, concat_parquet, plan_target, read_shard, shard_meta, staging_dir,
                          write_shard)

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm.auto import tqdm


# -- tasks that run anywhere (threads or Dask workers): no catalog access --------------------------------------
@task(cache_policy=NONE, task_run_name="read {label}")
def stage_group(shards: list[Shard], staging: str, known: list[str | None], label: str) -> list[dict | Exception]:
    """Read a group of units (``stage_units``: one GE run and one detector pass for the group) and stage each as
    parquet. A unit is skipped when its fingerprint equals ``known`` (what the catalog last loaded) or when a crashed
    run already staged it. A unit that fails is tried once more on its own (a transient read error), then its
    error is its result: one unit's failure is never its neighbours'."""
    out = stage_units(shards, staging, known)
    again = [i for i, r in enumerate(out) if isinstance(r, Exception)]
    for i in again:
        out[i] = stage_units([shards[i]], staging, [known[i]])[0]
    return out


def _read_unit(shard: Shard, staging: str, known: str | None):
    """(the unit's staging record, its shard folder, its ReadResult or None when there is nothing to read). The
    read is not finished: outcomes and validation are the caller's (``finish_reads``, once per group)."""
    unit_sha = sha256_of(Path(shard.path))
    fp = shard.fingerprint(unit_sha)
    out = {"key": shard.key, "target": shard.target, "path": shard.path, "adapter": shard.adapter,
           "sha256": unit_sha, "fingerprint": fp}
    if known == fp:
        return {**out, "status": "unchanged"}, None, None
    # keyed by unit and fingerprint: two units with identical bytes (a copied samples file) are different sources
    dest = Path(staging) / "ingest" / hashlib.sha256(f"{shard.key}|{fp}".encode()).hexdigest()
    if shard_meta(dest) is not None:
        return {**out, "status": "staged", "dir": str(dest), "reused": True}, dest, None
    ctx = dataclasses.replace(shard.ctx, hashes={shard.path: unit_sha})  # provenance reuses the unit's hash
    result = read_target(shard.path, ctx, threads=1, finish=False)  # units are read side by side already
    return {**out, "status": "staged", "dir": str(dest), "reused": False}, dest, result


# Units read together (one stage_group task, or one group on the engine-free ingest's pool) share one Great
# Expectations run (a run costs ~0.1-0.25 s whatever its size: per 20,000-row unit that was more than the read). A group holds at most this many
# bytes of input files (a larger unit is a group of its own): the memory of a few units, not of the corpus.
STAGE_GROUP_BYTES = 160 * 1024 * 1024
STAGE_GROUP_UNITS = 64


def stage_units(shards: list[Shard], staging: str, known: list[str | None], *,
                in_memory: bool = False) -> list[dict | Exception]:
    """Read and stage several units with one GE run over all of them (validate_batches judges each batch on
    its own rows, so the rows, quarantines and results are the per-unit runs'). Per unit: its staging record, or
    the exception that stopped it (one unit's failure is never its neighbours'). ``in_memory``: the record
    carries the unit's batches ("batches") instead of writing them as parquet, for a writer in this process."""
    outs: list[dict | Exception] = []
    todo = []
    for shard, k in zip(shards, known):
        try:
            out, dest, result = _read_unit(shard, staging, k)
        except Exception as e:
            outs.append(e)
            continue
        outs.append(out)
        if result is not None:
            todo.append((len(outs) - 1, shard, dest, result))
    try:
        finish_reads([r for *_, r in todo])  # one detector pass and one GE run for the group
    except Exception as e:  # validate_batches records GE's own failures; anything else fails the group's reads
        for i, *_ in todo:
            outs[i] = e
        return outs
    for i, shard, dest, result in todo:
        try:
            for b in result.batches:
                b.check_reconciled()
            if in_memory:
                outs[i] = {**outs[i], "batches": result.batches}
            else:
                write_shard(dest, result.batches, {"key": shard.key, "unrecognised": result.unrecognised})
        except Exception as e:
            outs[i] = e
    return outs


def _unit_groups(shards: list[Shard], parallel: int = 1) -> list[list[int]]:
    """Consecutive units in groups of at most STAGE_GROUP_BYTES of files and STAGE_GROUP_UNITS units (a larger
    unit is a group of its own), of about equal size, and as many groups as a multiple of ``parallel`` where
    there are enough units: the workers then run out of groups together, instead of one reading a full last
    group while the others wait (a small corpus still keeps every worker busy)."""
    if not shards:
        return []
    sizes = []
    for s in shards:
        try:
            sizes.append(os.stat(s.path).st_size if os.path.isfile(s.path) else STAGE_GROUP_BYTES)
        except OSError:
            sizes.append(STAGE_GROUP_BYTES)
    parallel = max(1, min(parallel, len(shards)))
    total = sum(sizes) or 1
    n = max(math.ceil(total / STAGE_GROUP_BYTES), math.ceil(len(shards) / STAGE_GROUP_UNITS), parallel)
    n = min(len(shards), math.ceil(n / parallel) * parallel)
    # Unit i joins the group its midpoint falls in when the corpus is cut into n equal slices of bytes.
    bounds, before = [], 0
    for size in sizes:
        bounds.append(min(n - 1, int(n * (before + size / 2) / total)))
        before += size
    # (A slice holds at most STAGE_GROUP_BYTES; the midpoint rule may add part of one unit.)
    groups: list[list[int]] = []
    for i, b in enumerate(bounds):
        alone = sizes[i] >= STAGE_GROUP_BYTES or (i and sizes[i - 1] >= STAGE_GROUP_BYTES)
        if not groups or b != bounds[i - 1] or alone or len(groups[-1]) >= STAGE_GROUP_UNITS:
            groups.append([])
        groups[-1].append(i)
    return groups


@task(cache_policy=NONE, task_run_name="score {name}")
def score_partition(name: str, responses: str, context: str, thresholds: Sequence[float], out: str) -> dict:
    """Every derived table for one benchmark, computed on a private in-memory catalog holding that benchmark's
    responses and a copy of the other tables; written as parquet for the writer."""
    with CatalogWriter(":memory:") as w:
        for f in sorted(Path(context).glob("*.parquet")):
            w.con.execute(f"INSERT INTO \"{f.stem}\" BY NAME SELECT * FROM read_parquet({_lit(f)})")
        w.con.execute(f"INSERT INTO responses BY NAME SELECT * FROM read_parquet({_lit(responses)})")
        tables = derived_tables(w.con, thresholds)
    Path(out).mkdir(parents=True, exist_ok=True)
    for table, data in tables.items():
        pq.write_table(data, Path(out) / f"{table}.parquet")
    return {"name": name, "out": out, "tables": {t: d.num_rows for t, d in tables.items()}}


def _lit(path: str | Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


# -- tasks called inline, in the flow's process: the single writer ---------------------------------------------
# Staged units are loaded in groups of about this many records, one transaction per group: far fewer commits than
# one per source, while the writer never holds more than one group in memory.
LOAD_GROUP_ROWS = 1_000_000  # $BENCH_AUDIT_LOAD_GROUP_ROWS overrides
LOAD_MEMORY_LIMIT = "128MB"  # DuckDB's own memory while loading ($BENCH_AUDIT_LOAD_MEMORY overrides)


def load_group_rows() -> int:
    """Records per load transaction: $BENCH_AUDIT_LOAD_GROUP_ROWS, else LOAD_GROUP_ROWS. Fewer hold less memory
    in the writer and cost more commits (at 250,000 the 2M-row benchmark took ~30% more CPU)."""
    env = os.environ.get("BENCH_AUDIT_LOAD_GROUP_ROWS", "").strip()
    if not env:
        return LOAD_GROUP_ROWS
    if env.isdigit() and int(env) > 0:
        return int(env)
    raise ValueError(f"BENCH_AUDIT_LOAD_GROUP_ROWS={env!r}: give a positive whole number of records per load "
                     f"transaction, or unset it for the default ({LOAD_GROUP_ROWS:,})")


class _UnitLoader:
    """The single writer's side of an ingest: units' batches in, loaded in groups of ~``load_group_rows()``
    records, one transaction per group that also records the group's units (catalog/writer.py load_many,
    catalog/units.py record_units): a crash before its commit leaves neither the rows nor the records, and the
    next run reads those units again. Holds one group in memory."""

    def __init__(self, db: str, run_id: str, n_units: int | None) -> None:
        self.w = CatalogWriter(db)
        # DuckDB keeps the table blocks it wrote cached (~20 MB per million responses) up to its memory_limit, 80%
        # of RAM by default: at 100M rows that alone would be ~2 GB in this process. Clean cached blocks are
        # evicted (not spilled) under a cap; this writer closes at the end of the load, so the cap is the load's.
        self.w.con.execute(f"SET memory_limit = '{os.environ.get('BENCH_AUDIT_LOAD_MEMORY', LOAD_MEMORY_LIMIT)}'")
        self.run_id, self.n_units = run_id, n_units
        self.group_rows = load_group_rows()
        self.group: list[tuple[int, dict, list[SourceBatch]]] = []
        self.rows = self.done = 0
        self.counts = {"sources": 0, "read": 0, "accepted": 0, "quarantined": 0}

    def add(self, unit: dict, batches: list[SourceBatch]) -> None:
        self.done += 1
        for b in batches:
            self.counts["sources"] += 1
            self.counts["read"] += b.provenance.n_read
            self.counts["accepted"] += b.responses.num_rows
            self.counts["quarantined"] += b.quarantine.num_rows
            self.rows += b.provenance.n_read
        self.group.append((self.done, unit, batches))
        if self.rows >= self.group_rows:  # bounds memory: a group is loaded and dropped before the next
            self.flush()

    def flush(self) -> None:
        units = [{"unit_key": s["key"], **{k: s[k] for k in ("target", "path", "adapter", "sha256", "fingerprint")},
                  "source_ids": [b.provenance.source_id for b in batches]} for _, s, batches in self.group]
        self.w.load_many([b for _, _, bs in self.group for b in bs], self.run_id,
                         then=lambda con: record_units(con, units, self.run_id))
        for i, s, _ in self.group:
            of = f"/{self.n_units}" if self.n_units is not None else ""  # unknown while reads still come in
            print(f"loaded unit {i}{of}: {s['key']}", flush=True)
        self.group.clear()
        self.rows = 0

    def finish(self, shards: list[dict], failures: list[tuple[str, str]], unrecognised: list[tuple[str, str]],
               cleared: list[str], staging: str, planned_targets: list[str] | None,
               planned_units: list[str] | None) -> dict:
        """Load the last group, drop what left the inputs, record what could not be read, refresh the
        dimension tables, and remove the staging left behind. Returns the ingest summary."""
        self.flush()
        w = self.w
        loaded = [s for s in shards if s["status"] == "staged"]
        summary = {**self.counts, "unrecognised": len(unrecognised), "failed": len(failures),
                   "units_read": len(loaded), "units_unchanged": sum(s["status"] == "unchanged" for s in shards),
                   "sources_unchanged": sum(s.get("n_sources", 0) for s in shards if s["status"] == "unchanged"),
                   "staged_reused": sum(bool(s.get("reused")) for s in loaded)}
        # Units whose files are gone from a target read in full this time: their sources go too.
        summary["sources_removed"] = len(prune_units(w, planned_targets or [], planned_units or []))
        # A re-run replaces what earlier runs said about the same inputs.
        w.clear_failures(cleared + [p for p, _ in unrecognised] + [t for t, _ in failures])
        for target, reason in failures + unrecognised:
            w.record_failure(target, reason, self.run_id)
        reg = bench_registry.known()
        w.refresh_dimensions(pa.table({
            "benchmark": [b.id for b in reg.values()],
            "name": [b.name for b in reg.values()],
            "n_choices": pa.array([b.n_choices for b in reg.values()], pa.int32()),
        }))
        # Staged shards are loaded: drop them, and anything half-written by a crashed attempt.
        root = Path(staging) / "ingest"
        done = {Path(s["dir"]).name for s in loaded}
        for d in root.glob("*") if root.is_dir() else []:
            if d.name in done or ".tmp-" in d.name or shard_meta(d) is None:
                shutil.rmtree(d, ignore_errors=True)
        _rmdir_empty(root)
        return summary

    def close(self) -> None:
        self.w.close()


def _batches_of(unit: dict) -> list[SourceBatch]:
    """A staged unit's batches: handed over in memory, or read back from its parquet shard."""
    batches = unit.pop("batches", None)
    return batches if batches is not None else read_shard(Path(unit["dir"]))


@task(cache_policy=NONE)
def load_staged(db: str, shards: list[dict], failures: list[tuple[str, str]], unrecognised: list[tuple[str, str]],
                cleared: list[str], run_id: str, staging: str, planned_targets: list[str] | None = None,
                planned_units: list[str] | None = None) -> dict:
    """Load every staged shard (in groups of ~``load_group_rows()`` records, one transaction per group with its
    units' records), record what could not be read, and refresh the dimension tables."""
    loaded = [s for s in sorted(shards, key=lambda s: s["key"]) if s["status"] == "staged"]
    loader = _UnitLoader(db, run_id, len(loaded))
    try:
        for s in loaded:
            loader.add(s, _batches_of(s))
        return loader.finish(shards, failures, unrecognised, cleared, staging, planned_targets, planned_units)
    finally:
        loader.close()


def _flag(value: bool | None, env: str) -> bool:
    """An explicit parameter wins; else the environment (``0``/``false``/``no`` switch it off); default on."""
    if value is not None:
        return value
    return os.environ.get(env, "1").strip().lower() not in {"0", "false", "no", "off"}


@task(retries=1, retry_delay_seconds=5, cache_policy=NONE)
def classify(db: str, harness_catalogs: bool | None = None, probes: bool | None = None) -> int:
    """Classify every (benchmark, grader): curated + empirical evidence, plus the lm-eval / HELM catalogs and the
    grader probes (unless switched off: parameter, or $BENCH_AUDIT_HARNESS_CATALOGS / $BENCH_AUDIT_PROBES = 0).
    A harness wheel that cannot be had is a warning, not a failure."""
    catalogs = None
    if _flag(harness_catalogs, "BENCH_AUDIT_HARNESS_CATALOGS"):
        catalogs = load_harness_catalogs(probes=_flag(probes, "BENCH_AUDIT_PROBES"))
        for note in catalogs.notes:
            _logger().warning(note)
    with CatalogWriter(db) as w:  # the catalogs are read before the writer opens: a download holds no lock
        tables = store_classification(w, catalogs)
    return tables["grading_schemes"].num_rows


def _logger():
    try:
        return get_run_logger()
    except MissingContextError:  # called as plain `.fn` (bench-audit classify/ingest): no Prefect run
        return logging.getLogger("bench-audit")


@task(cache_policy=NONE)
def rescore(db: str, thresholds: Sequence[float]) -> pa.Table:
    """Recompute every derived table (scores first) in one go; returns the scores."""
    with CatalogWriter(db) as w:
        tables = derived_tables(w.con, thresholds)
        for name, table in tables.items():
            w.replace_table(name, table)
    return tables["scores"]


@task(cache_policy=NONE)
def export_partitions(db: str, dest: str, by_benchmark: bool = True) -> list[tuple[str, str]]:
    """Parquet export for the re-score fan-out: each benchmark's responses, and every other table whole.
    Derived tables are computed per (benchmark, grader), so a benchmark is a safe unit of work."""
    root = Path(dest)
    shutil.rmtree(root, ignore_errors=True)
    (root / "context").mkdir(parents=True)
    (root / "responses").mkdir()
    with CatalogWriter(db) as w:
        con = w.con
        tables = [t for (t,) in con.sql("SELECT table_name FROM duckdb_tables() WHERE database_name = "
                                        "current_database() AND schema_name = 'main' ORDER BY 1").fetchall()]
        for t in tables:
            if t not in ("responses", "schema_migrations"):
                con.execute(f"COPY (SELECT * FROM \"{t}\") TO {_lit(root / 'context' / (t + '.parquet'))} "
                            "(FORMAT parquet)")
        names = [b for (b,) in con.sql("SELECT DISTINCT benchmark FROM responses ORDER BY 1").fetchall()]
        parts = []
        if not by_benchmark or not names:
            parts.append(("all", "TRUE"))
        else:
            parts += [(b, "benchmark = " + _lit(b)) for b in names]
        out = []
        for i, (name, where) in enumerate(parts):
            path = root / "responses" / f"{i:05d}.parquet"
            con.execute(f"COPY (SELECT * FROM responses WHERE {where}) TO {_lit(path)} (FORMAT parquet)")
            out.append((name, str(path)))
    return out


@task(cache_policy=NONE)
def store_derived(db: str, parts: list[dict]) -> pa.Table:
    """Replace each derived table with the union of its per-benchmark parts; returns the scores."""
    names = list(dict.fromkeys(t for p in parts for t in p["tables"]))
    with CatalogWriter(db) as w:
        for name in names:
            w.replace_table(name, concat_parquet([Path(p["out"]) / f"{name}.parquet" for p in parts]))
        return w.con.sql("SELECT * FROM scores ORDER BY benchmark, grader, threshold, rank, model").to_arrow_table()


@task(cache_policy=NONE)
def render_report(db: str, out: str) -> str:
    with CatalogWriter(db) as w:
        return str(write_report(w.con, out))


def _rmdir_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


# -- the pipeline, shared by the flows and the engine-free `bench-audit ingest` --------------------------------
def _submit_prefect(t, **kw):
    return t.submit(**kw)


def _stage_prefect(parallel: int):
    """One Prefect task per group of units (``_unit_groups``: one GE run per group, not per unit, which at
    leaderboard scale is thousands of runs and task runs fewer), on the flow's task runner of ``parallel``
    workers; one future per unit."""
    def stage(shards: list[Shard], staging: str, known: list[str | None]) -> list:
        futures: list = []
        for g in _unit_groups(shards, parallel):
            first, last = shards[g[0]].key, shards[g[-1]].key
            label = first if len(g) == 1 else f"{len(g)} units, {first} .. {last}"
            f = stage_group.submit(shards=[shards[i] for i in g], staging=staging, known=[known[i] for i in g],
                                   label=label)
            futures += [_Member(f, j) for j in range(len(g))]
        return futures
    return stage


class _Member:
    """One unit's result inside a staged group's future: ``result()`` returns it, or raises the unit's error."""

    def __init__(self, group, i: int) -> None:
        self.group, self.i = group, i

    def result(self) -> dict:
        r = self.group.result()[self.i]
        if isinstance(r, Exception):
            raise r
        return r


def _stage_pool(pool: ThreadPoolExecutor, workers: int):
    """The engine-free staging: groups of units (``_unit_groups``) read on a thread pool, their batches kept in
    memory for the writer in this process (no parquet round trip). One future per unit, in the units' order,
    handed out lazily: besides the group being handed over, the pool holds at most ``workers + 1`` groups (one
    per thread and one queued), so memory holds a few groups, never the corpus."""
    def stage(shards: list[Shard], staging: str, known: list[str | None]) -> Iterator[_Member]:
        groups = iter(_unit_groups(shards, workers))
        ahead: deque = deque()

        def submit() -> None:
            g = next(groups, None)
            if g is not None:
                ahead.append((g, pool.submit(stage_units, [shards[i] for i in g], staging, [known[i] for i in g],
                                             in_memory=True)))
        for _ in range(workers + 1):
            submit()
        while ahead:
            g, f = ahead.popleft()
            submit()
            yield from (_Member(f, j) for j in range(len(g)))
    return stage


def _call_prefect(t, **kw):
    return t(**kw)


def _ingest(sources: list[str], db: str, mirror: str | None, run_id: str, *, staging: Path, full_refresh: bool,
            stage, log, call=None) -> dict:
    """Plan, read (``stage``) and load. ``call`` runs the load_staged task under Prefect once every read is in;
    without it (no engine) the writer loads each unit in this process as its read comes in."""
    targets = resolve_sources(sources, mirror)
    failures: list[tuple[str, str]] = []
    shards: list[Shard] = []
    unrecognised: list[tuple[str, str]] = []
    cleared: list[str] = []
    for t in targets:
        if t.error:
            log.warning("source %s unavailable: %s", t.label, t.error)
            failures.append((t.label, t.error))
            continue
        try:
            found, unrec = plan_target(t.label, Path(t.path), t.context)
        except Exception as e:  # an unreadable source is reported, never fatal to the others
            log.warning("could not read %s: %s", t.label, e)
            failures.append((t.label, f"{type(e).__name__}: {e}"))
            continue
        shards += found
        unrecognised += unrec
        cleared += [t.label, t.path]
    with CatalogWriter(db) as w:
        known = {} if full_refresh else known_units(w)
    futures = stage(shards, str(staging), [known.get(s.key, (None, 0))[0] for s in shards])
    # Engine-free: the writer loads each unit as its read comes in (reads go on meanwhile on the pool). Under
    # Prefect the reads are tasks that stage parquet, and load_staged loads them once all are in.
    loader = _UnitLoader(db, run_id, None) if call is None else None
    try:
        staged = []
        for s, f in tqdm(zip(shards, futures), total=len(shards), desc="reading sources", unit="unit",
                         disable=None):
            try:
                r = f.result()
            except Exception as e:
                log.warning("could not read %s: %s", s.path, e)
                failures.append((s.path, f"{type(e).__name__}: {e}"))
                continue
            if r["status"] == "unchanged":
                r["n_sources"] = known[s.key][1]
            elif loader is not None:
                loader.add(r, _batches_of(r))
            staged.append(r)
            cleared.append(s.path)
        # A target whose every unit was planned and reached the loader is complete: units missing from it are gone.
        failed_paths = {p for p, _ in failures}
        complete = [t.label for t in targets if not t.error and t.label not in failed_paths
                    and not any(s.target == t.label and s.path in failed_paths for s in shards)]
        rest = dict(failures=failures, unrecognised=unrecognised, cleared=cleared, staging=str(staging),
                    planned_targets=complete, planned_units=[s.key for s in shards])
        if loader is not None:
            summary = loader.finish(staged, **rest)
        else:
            summary = call(load_staged, db=db, shards=staged, run_id=run_id, **rest)
    finally:
        if loader is not None:
            loader.close()
    if summary["units_unchanged"]:
        log.info("%d sources unchanged, skipped", summary["sources_unchanged"])
    return summary


def _rescore(db: str, thresholds: Sequence[float], staging: Path, run_id: str, by_benchmark: bool,
             submit, call) -> pa.Table:
    dest = staging / f"rescore-{run_id}"
    for old in staging.glob("rescore-*"):  # left by a crashed run (we hold the lock: nobody else uses them)
        shutil.rmtree(old, ignore_errors=True)
    parts = call(export_partitions, db=db, dest=str(dest), by_benchmark=by_benchmark)
    futures = [submit(score_partition, name=name, responses=path, context=str(dest / "context"),
                      thresholds=list(thresholds), out=str(dest / "out" / f"{i:05d}"))
               for i, (name, path) in enumerate(parts)]
    done = [f.result() for f in futures]
    scores = call(store_derived, db=db, parts=done)
    shutil.rmtree(dest, ignore_errors=True)
    _rmdir_empty(staging)
    return scores


@flow(name="ingest", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=read_threads()))
def ingest_flow(sources: list[str], db: str, mirror: str | None = None, run_id: str = "adhoc",
                staging: str | None = None, full_refresh: bool = False) -> dict:
    out = _ingest(sources, db, mirror, run_id, staging=staging_dir(db, staging), full_refresh=full_refresh,
                  stage=_stage_prefect(read_threads()), call=_call_prefect, log=get_run_logger())
    _rmdir_empty(staging_dir(db, staging))  # its shards are loaded and gone; leave no empty folder behind
    return out


def ingest_sources(sources: list[str], db: str, mirror: str | None = None, *, full_refresh: bool = False,
                   staging: str | None = None) -> dict:
    """The ingest flow's work without the Prefect engine (for `bench-audit ingest`: no API to start)."""
    with CatalogLock(db, purpose="ingest"):
        with CatalogWriter(db) as w:
            interrupt_dead_runs(w)
            run_id = w.start_run("ingest", {"sources": sources, "mirror": mirror})
        status = "failed"
        try:
            workers = read_threads()
            with ThreadPoolExecutor(workers, thread_name_prefix="stage") as pool:
                out = _ingest(sources, db, mirror, run_id, staging=staging_dir(db, staging),
                              full_refresh=full_refresh, stage=_stage_pool(pool, workers),
                              log=logging.getLogger("bench-audit"))
            _rmdir_empty(staging_dir(db, staging))
            status = "completed"
            return out
        finally:
            with CatalogWriter(db) as w:
                w.finish_run(run_id, status)


@flow(name="audit-pipeline", log_prints=True)
def pipeline_flow(sources: list[str], db: str, mirror: str | None, run_id: str, thresholds: list[float],
                  report: str | None, staging: str, full_refresh: bool = False,
                  partition_rescore: bool = True, harness_catalogs: bool | None = None,
                  probes: bool | None = None, parallel: int = 2) -> dict:
    """ingest (fan-out per group of units) -> classify -> re-score (fan-out per benchmark) -> report, on this
    flow's task runner of ``parallel`` workers."""
    log = get_run_logger()
    summary = _ingest(sources, db, mirror, run_id, staging=Path(staging), full_refresh=full_refresh,
                      stage=_stage_prefect(parallel), call=_call_prefect, log=log)
    summary["grading_units"] = classify(db, harness_catalogs, probes)
    scores = _rescore(db, thresholds, Path(staging), run_id, partition_rescore, _submit_prefect, _call_prefect)
    summary["score_rows"] = scores.num_rows
    out = render_report(db, report) if report else None
    _publish(summary, scores, out, db)
    return {**summary, "report": out}


def _publish(summary: dict, scores: pa.Table, report: str | None, db: str) -> None:
    lines = ["# bench-audit run", "", "| what | count |", "|---|---|"]
    lines += [f"| {k} | {v:,} |" for k, v in summary.items() if isinstance(v, int)]
    if report:
        lines += ["", f"HTML report: `{report}`"]
    create_markdown_artifact("\n".join(lines), key="bench-audit-summary", description="bench-audit run summary")
    top = scores.filter(pc.equal(scores["rank"], 1)) if scores.num_rows else scores
    rows = top.select(["benchmark", "grader", "threshold", "model", "score"]).to_pylist()
    if rows:
        create_table_artifact(rows, key="bench-audit-leaders", description="Leader per benchmark and threshold")
    con = connect_reader(db)  # the report itself, as Markdown and tables, on the flow run's Artifacts tab
    try:
        publish_report_artifacts(con, report_path=report)
    finally:
        con.close()


@flow(name="audit", log_prints=True)
def audit_flow(sources: list[str] | None = None, db: str = "bench-audit.duckdb",
               report: str | None = "bench-audit-report.html",
               thresholds: list[float] = list(DEFAULT_THRESHOLDS), mirror: str | None = None,
               task_runner: str | None = None, dask_address: str | None = None, dask_workers: int | None = None,
               max_workers: int | None = None, full_refresh: bool = False, staging: str | None = None,
               partition_rescore: bool = True, lock_wait: float = 0.0, harness_catalogs: bool | None = None,
               probes: bool | None = None) -> dict:
    """The whole audit: ingest the sources (the manifest's defaults when none are given), classify every
    grader, re-score at each confidence target, and write the report.

    task_runner: "threads" (default) or "dask" (a local cluster of ``dask_workers`` processes, or the cluster at
    ``dask_address``); unset = $BENCH_AUDIT_TASK_RUNNER. full_refresh: read every source even if unchanged.
    staging: where shards are staged (default: beside the catalog; must be shared with remote Dask workers).
    lock_wait: seconds to wait for another run that holds the catalog. harness_catalogs / probes: read the
    lm-eval and HELM task catalogs and probe the graders while classifying (unset = on, unless
    $BENCH_AUDIT_HARNESS_CATALOGS / $BENCH_AUDIT_PROBES say 0)."""
    thresholds = parse_thresholds(thresholds)
    spec = RunnerSpec.resolve(task_runner, dask_address, dask_workers, max_workers)
    log = get_run_logger()
    stage = staging_dir(db, staging)
    with CatalogLock(db, purpose="audit", wait=lock_wait) as lock:
        if lock.took_over is not None:
            log.warning("took over a stale lock on %s left by %s", db, lock.took_over or "an unreadable lock file")
        with CatalogWriter(db) as w:
            if interrupt_dead_runs(w):
                log.warning("earlier run(s) on %s ended without finishing; marked 'interrupted'", db)
            run_id = w.start_run("audit", {"sources": sources, "thresholds": thresholds, "mirror": mirror,
                                           "task_runner": spec.describe(), "full_refresh": full_refresh})
        status = "failed"
        try:
            log.info("run %s: task runner %s", run_id, spec.describe())
            with spec.api_for_workers():
                summary = pipeline_flow.with_options(task_runner=spec.build())(
                    sources or [], db, mirror, run_id, thresholds, report, str(stage), full_refresh,
                    partition_rescore, harness_catalogs, probes, spec.parallel)
            status = "completed"
            return {**summary, "run_id": run_id, "db": str(Path(db)), "task_runner": spec.describe()}
        finally:
            with CatalogWriter(db) as w:
                w.finish_run(run_id, status)


@flow(name="report", log_prints=True)
def report_flow(db: str = "bench-audit.duckdb", out: str = "bench-audit-report.html",
                lock_wait: float = 600.0) -> str:
    """Re-render the HTML report from the catalog (waits up to ``lock_wait`` s for a running audit)."""
    with CatalogLock(db, purpose="report", wait=lock_wait):
        return render_report(db, out)
