"""Bookkeeping for incremental ingest (table ``ingest_units``, migration 040), written through a CatalogWriter.

An ingest unit is what one adapter reads in one go (a file, or a folder for folder-shaped formats); it yields
one or more sources. ``record_units`` stores the units' fingerprints in the transaction that loads their sources
(``CatalogWriter.load_many(..., then=...)``), so a unit is recorded exactly when its rows are in: a crash before the
commit leaves neither, and the next run reads the unit again.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import pyarrow as pa

from catalog.writer import CatalogWriter, transaction


def known_units(w: CatalogWriter) -> dict[str, tuple[str, int]]:
    """unit_key -> (fingerprint, number of sources) for every unit whose sources are all still in the catalog."""
    rows = w.con.sql("""
        SELECT u.unit_key, u.fingerprint, len(u.source_ids)
        FROM ingest_units u
        WHERE NOT EXISTS (SELECT 1 FROM (SELECT unnest(u.source_ids) AS id) x
                          WHERE x.id NOT IN (SELECT source_id FROM sources))
    """).fetchall()
    return {k: (fp, n) for k, fp, n in rows}


def record_units(con, units: Sequence[Mapping[str, Any]], run_id: str | None) -> list[str]:
    """Inside the caller's transaction: record what each unit loaded (``unit_key``, ``target``, ``path``,
    ``adapter``, ``sha256``, ``fingerprint``, ``source_ids``) and drop the sources a unit produced before but no
    longer does. One statement per step for the whole group, not per unit. Returns the source ids dropped."""
    units = list({u["unit_key"]: u for u in units}.values())  # a unit given twice: its last record stands
    if not units:
        return []
    keys = [u["unit_key"] for u in units]
    old = dict(con.execute("SELECT unit_key, source_ids FROM ingest_units WHERE unit_key IN (SELECT unnest(?))",
                           [keys]).fetchall())
    gone = sorted({s for u in units for s in set(old.get(u["unit_key"]) or []) - set(u["source_ids"])})
    _drop_sources(con, gone)
    con.execute("DELETE FROM ingest_units WHERE unit_key IN (SELECT unnest(?))", [keys])
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    con.register("_units", pa.table({
        **{c: pa.array([u[c] for u in units], pa.string())
           for c in ("unit_key", "target", "path", "adapter", "sha256", "fingerprint")},
        "source_ids": pa.array([list(u["source_ids"]) for u in units], pa.list_(pa.string())),
        "run_id": pa.array([run_id] * len(units), pa.string()),
        "loaded_at": pa.array([now] * len(units), pa.timestamp("us")),
    }))
    try:
        con.execute("INSERT INTO ingest_units BY NAME SELECT * FROM _units")
    finally:
        con.unregister("_units")
    return gone


def _drop_sources(con, source_ids: Sequence[str]) -> None:
    if source_ids:
        for table in ("responses", "quarantine", "sources"):
            con.execute(f"DELETE FROM {table} WHERE source_id IN (SELECT unnest(?))", [list(source_ids)])


def prune_units(w: CatalogWriter, targets: Sequence[str], keep: Sequence[str]) -> list[str]:
    """Units once found under ``targets`` but no longer there (file deleted upstream): drop them and their
    sources. Returns the source ids dropped."""
    con = w.con
    keep_set = set(keep)
    rows = con.execute("SELECT unit_key, source_ids FROM ingest_units WHERE target IN (SELECT unnest(?))",
                       [list(targets)]).fetchall()
    gone = [(k, ids) for k, ids in rows if k not in keep_set]
    if not gone:
        return []
    with transaction(con):
        _drop_sources(con, [s for _, ids in gone for s in ids])
        con.execute("DELETE FROM ingest_units WHERE unit_key IN (SELECT unnest(?))", [[k for k, _ in gone]])
    return sorted(s for _, ids in gone for s in ids)


def interrupt_dead_runs(w: CatalogWriter) -> int:
    """Runs still marked 'running' when a new run holds the catalog lock died without finishing."""
    n = w.con.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchall()[0][0]
    if n:
        w.con.execute("UPDATE runs SET status = 'interrupted', finished_at = NULL WHERE status = 'running'")
    return n
