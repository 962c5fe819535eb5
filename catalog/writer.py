"""The single writer of the DuckDB catalog: migrations, loads, and the tables derived from them.

Only this module writes the catalog. It takes Arrow tables (it never parses a source format) and loads each
source in one transaction that replaces whatever that source loaded before, so a re-run never duplicates
and a crash mid-load leaves the previous state.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence

import duckdb
import pyarrow as pa

from audit.records import QUARANTINE_SCHEMA, RESPONSE_SCHEMA, SourceBatch

_log = logging.getLogger("bench-audit")


class CatalogLocked(RuntimeError):
    """Another process holds the catalog open for writing."""


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration shipped in catalog/migrations, in order."""
    out = []
    for f in resources.files("catalog").joinpath("migrations").iterdir():
        if f.name.endswith(".sql"):
            out.append((int(f.name.split("_", 1)[0]), f.name, f.read_text("utf-8")))
    return sorted(out)


SCHEMA_VERSION = migrations()[-1][0]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def connect_writer(path: str | Path) -> duckdb.DuckDBPyConnection:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(path))
    except duckdb.IOException as e:
        if "lock" in str(e).lower():
            raise CatalogLocked(
                f"{path} is open in another process (another bench-audit run?). Wait for it to finish, "
                f"or point --db at another file. DuckDB said: {e}"
            ) from e
        raise


def connect_reader(path: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection that also cannot touch files outside the catalog (no COPY TO, no ATTACH)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no catalog there. Create one with `bench-audit run ... --db {path}`.")
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: COMMIT when the block ends, ROLLBACK (and re-raise) when it fails."""
    con.execute("BEGIN")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


class CatalogWriter:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.con = connect_writer(self.path)
        self.migrate()

    # -- schema ---------------------------------------------------------------------------------------------
    def migrate(self) -> int:
        con = self.con
        con.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, "
                    "applied_at TIMESTAMP)")
        done = {v for (v,) in con.sql("SELECT version FROM schema_migrations").fetchall()}
        for version, name, sql in migrations():
            if version in done:
                continue
            with transaction(con):
                con.execute(sql)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, _now()])
        return max(done | {v for v, _, _ in migrations()})

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "CatalogWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- runs -----------------------------------------------------------------------------------------------
    def start_run(self, command: str, params: dict | None = None, run_id: str | None = None) -> str:
        run_id = run_id or uuid.uuid4().hex[:12]
        self.con.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, NULL, 'running')",
                         [run_id, command, json.dumps(params or {}, default=str), _now()])
        return run_id

    def finish_run(self, run_id: str, status: str = "completed") -> None:
        self.con.execute("UPDATE runs SET finished_at = ?, status = ? WHERE run_id = ?", [_now(), status, run_id])

    # -- loads ----------------------------------------------------------------------------------------------
    def source_sha(self, source_id: str) -> str | None:
        row = self.con.execute("SELECT sha256 FROM sources WHERE source_id = ?", [source_id]).fetchall()
        return row[0][0] if row else None

    def load(self, batch: SourceBatch, run_id: str | None = None) -> None:
        """Replace everything ``batch.provenance.source_id`` loaded before with this batch, atomically."""
        self.load_many([batch], run_id)

    def load_many(self, batches: Sequence[SourceBatch], run_id: str | None = None,
                  then: Callable[[duckdb.DuckDBPyConnection], Any] | None = None) -> None:
        """``load`` for several sources in ONE transaction and one INSERT per table (all or none of them).

        Per-source transactions cost a commit (and often a checkpoint) each: ~3.5x slower than one INSERT of the
        concatenated Arrow tables. Each source's old rows are still replaced, so a re-run never duplicates; a
        crash leaves every source of the group as it was. The caller bounds the group's size (memory).
        ``then(con)`` runs inside the same transaction, after the loads: bookkeeping that must commit with the
        rows it describes (catalog/units.py ``record_units``), or not at all."""
        batches = list(batches)
        if not batches and then is None:
            return
        for b in batches:
            b.check_reconciled()
        ids = [b.provenance.source_id for b in batches]
        # The same source twice: later batches replace earlier ones, in order (one INSERT per occurrence).
        parts = [batches] if len(set(ids)) == len(ids) else [[b] for b in batches]
        with transaction(self.con):
            for part in parts:
                if part:
                    self._replace_sources(part, run_id)
            if then is not None:
                then(self.con)

    def _replace_sources(self, batches: list[SourceBatch], run_id: str | None) -> None:
        """Inside the caller's transaction: replace what these (distinct) sources loaded before with ``batches``."""
        ids = [b.provenance.source_id for b in batches]
        responses = _concat([b.responses for b in batches], RESPONSE_SCHEMA)
        quarantine = _concat([b.quarantine for b in batches], QUARANTINE_SCHEMA)
        validation = [b.validation for b in batches if b.validation is not None]
        now = _now()
        sources = pa.table({
            "source_id": pa.array(ids, pa.string()),
            "format": pa.array([b.provenance.format for b in batches], pa.string()),
            "uri": pa.array([b.provenance.uri for b in batches], pa.string()),
            "revision": pa.array([b.provenance.revision for b in batches], pa.string()),
            "sha256": pa.array([b.provenance.sha256 for b in batches], pa.string()),
            "license": pa.array([b.provenance.license for b in batches], pa.string()),
            "n_read": pa.array([b.provenance.n_read for b in batches], pa.int64()),
            "n_accepted": pa.array([b.responses.num_rows for b in batches], pa.int64()),
            "n_quarantined": pa.array([b.quarantine.num_rows for b in batches], pa.int64()),
        })
        con = self.con
        con.register("_batch_ids", pa.table({"source_id": pa.array(ids, pa.string())}))
        con.register("_batch_responses", responses)
        con.register("_batch_quarantine", quarantine)
        con.register("_batch_sources", sources)
        try:
            # Rows read from somewhere else under the same source id are about to be replaced: say so (table
            # source_replacements, migration 070, and a warning), never silently.
            moved = con.execute("""
                INSERT INTO source_replacements
                SELECT s.source_id, s.uri, b.uri, s.sha256, b.sha256, s.n_read, ?::VARCHAR, ?::TIMESTAMP
                FROM sources s JOIN _batch_sources b USING (source_id) WHERE s.uri <> b.uri
                RETURNING source_id, old_uri, new_uri""", [run_id, now]).fetchall()
            for sid, old_uri, new_uri in moved:
                _log.warning("%s: replacing the rows read from %s with those of %s (a moved folder, or a "
                             "different one with the same name?); recorded in source_replacements",
                             sid, old_uri, new_uri)
            for table in ("responses", "quarantine", "sources"):
                con.execute(f"DELETE FROM {table} WHERE source_id IN (SELECT source_id FROM _batch_ids)")
            # The run id is a constant: set in SQL, not materialised per row in Python. Row order within a table
            # means nothing here (every reader orders or aggregates), and keeping it serialises the insert:
            # without it DuckDB inserts on all its threads, ~2.5x faster (docs/performance.md, run J).
            con.execute("SET preserve_insertion_order = false")
            try:
                con.execute("INSERT INTO responses SELECT * REPLACE (?::VARCHAR AS ingest_run_id) "
                            "FROM _batch_responses", [run_id])
                con.execute("INSERT INTO quarantine SELECT * REPLACE (?::VARCHAR AS ingest_run_id) "
                            "FROM _batch_quarantine", [run_id])
            finally:
                con.execute("RESET preserve_insertion_order")
            if validation:  # Great Expectations results (migration 050, audit/validation.py)
                vids = [b.provenance.source_id for b in batches if b.validation is not None]
                con.execute("DELETE FROM validation_results WHERE source_id IN (SELECT unnest(?))", [vids])
                vt = pa.concat_tables(validation, promote_options="permissive")
                con.register("_batch_validation", _with_run(vt, vt.schema, run_id))
                con.execute("INSERT INTO validation_results BY NAME SELECT * FROM _batch_validation")
                con.unregister("_batch_validation")
            con.execute("INSERT INTO sources SELECT *, ?::VARCHAR, ?::TIMESTAMP FROM _batch_sources", [run_id, now])
        finally:
            for name in ("_batch_ids", "_batch_responses", "_batch_quarantine", "_batch_sources"):
                con.unregister(name)

    def record_failure(self, target: str, reason: str, run_id: str | None = None) -> None:
        self.con.execute("INSERT INTO source_failures VALUES (?, ?, ?, ?)", [target, reason, run_id, _now()])

    def clear_failures(self, targets: Iterable[str]) -> None:
        self.con.execute("DELETE FROM source_failures WHERE target IN (SELECT unnest(?::VARCHAR[]))", [list(targets)])

    def refresh_dimensions(self, benchmarks: pa.Table) -> None:
        """Rebuild ``models`` and ``benchmarks`` from what the responses hold plus the benchmark registry."""
        con = self.con
        con.register("_bench_registry", benchmarks)
        try:
            with transaction(con):
                con.execute("DELETE FROM models")
                con.execute("INSERT INTO models SELECT DISTINCT model FROM responses ORDER BY 1")
                con.execute("DELETE FROM benchmarks")
                con.execute("""
                    INSERT INTO benchmarks
                    SELECT r.benchmark, coalesce(g.name, r.benchmark), g.n_choices
                    FROM (SELECT DISTINCT benchmark FROM responses) r LEFT JOIN _bench_registry g USING (benchmark)
                    UNION
                    SELECT g.benchmark, g.name, g.n_choices FROM _bench_registry g
                """)
        finally:
            con.unregister("_bench_registry")

    def replace_table(self, table: str, data: pa.Table, where: str | None = None) -> None:
        """Replace all rows (or the rows matching ``where``) of a derived table with ``data``, atomically."""
        con = self.con
        con.register("_replacement", data)
        try:
            with transaction(con):
                con.execute(f"DELETE FROM {table}" + (f" WHERE {where}" if where else ""))
                cols = ", ".join(f'"{c}"' for c in data.column_names)
                con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _replacement")
        finally:
            con.unregister("_replacement")


def _with_run(table: pa.Table, schema: pa.Schema, run_id: str | None) -> pa.Table:
    table = table.cast(schema)
    i = schema.get_field_index("ingest_run_id")
    return table.set_column(i, schema.field(i), pa.repeat(pa.scalar(run_id, pa.string()), table.num_rows))


def _concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    """The tables as one (zero-copy: chunks are kept), in the catalog's column order and types."""
    return pa.concat_tables([t.cast(schema) for t in tables])
