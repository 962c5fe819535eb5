"""Bookkeeping for incremental ingest (table ``ingest_units``, migration 040), written through a CatalogWriter.

An ingest unit is what one adapter reads in one go (a file, or a folder for folder-shaped formats); it yields
one or more sources. After all of a unit's sources are loaded, ``record_unit`` stores its fingerprint, so a crash
between the two leaves the unit unrecorded and the next run reads it again (each source load replaces, so nothing
is duplicated).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

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


def record_unit(w: CatalogWriter, *, unit_key: str, target: str, path: str, adapter: str, sha256: str,
                fingerprint: str, source_ids: Sequence[str], run_id: str | None) -> list[str]:
    """Record what a unit loaded; drop the sources it produced before but no longer does. Returns those dropped."""
    con = w.con
    with transaction(con):
        old = con.execute("SELECT source_ids FROM ingest_units WHERE unit_key = ?", [unit_key]).fetchall()
        gone = sorted(set(old[0][0]) - set(source_ids)) if old else []
        _drop_sources(con, gone)
        con.execute("DELETE FROM ingest_units WHERE unit_key = ?", [unit_key])
        con.execute("INSERT INTO ingest_units VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [unit_key, target, path, adapter, sha256, fingerprint, list(source_ids), run_id,
                     datetime.now(timezone.utc).replace(tzinfo=None)])
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
