"""SWE-bench leaderboard website data: ``data/leaderboards.json`` (SWE-bench/swe-bench.github.io).

``{"leaderboards": [{"name": "bash-only" | "Verified" | "Lite" | "Test" | "Multimodal", "results": [ENTRY, ...]}]}``.
An ENTRY names a run (``folder`` e.g. ``20251124_mini-v1.16.0_claude-opus-4-5-20251101``, display ``name``), its
headline ``resolved`` (% of the split) and, for some entries only, ``per_instance_details``:
``{instance_id: {"resolved": bool, "cost": ..., "api_calls": ...}}``.

One source per entry with per-instance details (``<file>#<leaderboard>/<folder>``); the records are its
instances. ``resolved: true`` -> correct, ``false`` -> wrong (execution-graded; no abstention can be expressed);
anything else is quarantined, as is an instance id repeated inside one object (plain JSON parsing would silently
keep only the last). Model = ``folder`` (unique per run; the same name the SWE-bench/experiments folders use).
Entries with only a headline have no per-sample records: they are listed in the batch notes. Where an entry's
headline disagrees with its own per-instance data by more than one instance's worth, the note says so (the per-instance
data is what is ingested).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterator

from audit.records import RecordBuilder, SourceBatch
from audit.sources import ReadContext, head, register
from audit.sources.jsonio import MAX_DOCUMENT_BYTES

# Leaderboard / split name (lower case) -> benchmark. "bash-only" is SWE-bench Verified run with a fixed agent.
SPLIT_BENCHMARK = {"bash-only": "swebench_verified", "verified": "swebench_verified", "lite": "swebench_lite",
                   "test": "swebench_full", "full": "swebench_full", "multimodal": "swebench_multimodal",
                   "multilingual": "swebench_multilingual"}
GRADER = "swebench_harness"


class _Obj(dict):
    """A JSON object that remembers keys it saw more than once (json keeps the last silently)."""

    dupes: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> _Obj:
    obj = _Obj()
    obj.dupes = []
    for k, v in pairs:
        if k in obj:
            obj.dupes.append(k)
            continue  # the first occurrence is kept, like the builder's duplicate rule
        obj[k] = v
    return obj


def parse_document(path: Path) -> tuple[Any, str | None]:
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        return None, f"file of {size:,} bytes exceeds the {MAX_DOCUMENT_BYTES:,}-byte document limit"
    try:
        return json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=_pairs), None
    except UnicodeDecodeError as e:
        return None, f"not UTF-8 (byte {e.start}): {e.reason}"
    except json.JSONDecodeError as e:
        return None, f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno} (truncated or corrupt)"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"


class SwebenchLeaderboard:
    name = "swebench_leaderboard"
    description = "SWE-bench leaderboards.json (website data) with per_instance_details {instance: {resolved}}"
    example = "../shared/data/swebench_leaderboard"

    def sniff(self, path: Path) -> bool:
        if not path.is_file() or path.suffix != ".json":
            return False
        h = head(path, 4096).lstrip()
        return h.startswith(b"{") and b'"leaderboards"' in h and b'"results"' in h

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        file_id = ctx.source_id(self.name, path)
        prov = ctx.provenance(self.name, path, file_id)
        doc, err = parse_document(path)
        boards = doc.get("leaderboards") if isinstance(doc, dict) else None
        if err or not isinstance(boards, list):
            b = RecordBuilder(file_id)
            b.reject(path.name, None, err or "expected {\"leaderboards\": [...]} at top level")
            yield b.finish(prov)
            return
        headline_only: list[str] = []
        out: list[SourceBatch] = []
        for bi, board in enumerate(boards):
            if not isinstance(board, dict) or not isinstance(board.get("results"), list):
                b = RecordBuilder(f"{file_id}#{bi}")
                b.reject(f"{path.name}:leaderboards[{bi}]", json.dumps(board, default=str)[:2000],
                         "leaderboard is not an object with a results list")
                out.append(b.finish(dataclasses.replace(prov, source_id=f"{file_id}#{bi}")))
                continue
            board_name = str(board.get("name") or bi)
            benchmark = SPLIT_BENCHMARK.get(board_name.lower(), f"swebench_{board_name.lower()}")
            for ei, entry in enumerate(board["results"]):
                folder = entry.get("folder") if isinstance(entry, dict) else None
                details = entry.get("per_instance_details") if isinstance(entry, dict) else None
                if isinstance(entry, dict) and details is None:
                    headline_only.append(f"{board_name}/{folder or ei}")
                    continue
                unit = f"{board_name}/{folder or ei}"
                source_id = f"{file_id}#{unit}"
                where = f"{path.name}:{unit}"
                b = RecordBuilder(source_id, benchmark=benchmark, grader=GRADER, model=str(folder or ""))
                if not isinstance(entry, dict) or not folder or not isinstance(details, dict):
                    b.reject(where, json.dumps(entry, default=str)[:2000],
                             "entry lacks a folder name or a per_instance_details object")
                else:
                    self._instances(b, where, details)
                batch = b.finish(dataclasses.replace(prov, source_id=source_id, uri=f"{prov.uri}#{unit}"))
                self._check_headline(batch, unit, entry)
                out.append(batch)
        if not out:  # nothing per-sample at all: still record the file as a source that held 0 records
            out.append(RecordBuilder(file_id).finish(prov))
        if headline_only:
            # Aggregate-only entries carry no per-sample records; say which, so nothing vanishes unremarked.
            out[0].notes.append(f"{len(headline_only)} entries have no per_instance_details: "
                                f"{', '.join(headline_only)}")
        yield from out

    @staticmethod
    def _instances(b: RecordBuilder, where: str, details: dict) -> None:
        for iid in getattr(details, "dupes", []):
            b.reject(f"{where}/{iid}", None, f"instance {iid} appears twice in per_instance_details; first kept")
        for iid, d in details.items():
            resolved = d.get("resolved") if isinstance(d, dict) else None
            if not isinstance(resolved, bool):
                b.reject(f"{where}/{iid}", json.dumps(d, default=str)[:2000],
                         f"instance {iid}: resolved is {resolved!r}, expected true or false")
                continue
            b.add(sample_id=iid, original_score=1.0 if resolved else 0.0,
                  source_label="resolved" if resolved else "unresolved",
                  outcome="correct" if resolved else "wrong")

    @staticmethod
    def _check_headline(batch: SourceBatch, unit: str, entry: Any) -> None:
        headline = entry.get("resolved") if isinstance(entry, dict) else None
        t = batch.responses
        if not isinstance(headline, (int, float)) or isinstance(headline, bool) or t.num_rows == 0:
            return
        n_ok = sum(1 for v in t["original_score"].to_pylist() if v == 1.0)
        derived = 100.0 * n_ok / t.num_rows
        if abs(derived - float(headline)) > 100.0 / t.num_rows:  # more than one instance's worth
            batch.notes.append(f"{unit}: headline resolved {headline}% but per-instance data gives "
                               f"{n_ok}/{t.num_rows} = {derived:.1f}%")


register(SwebenchLeaderboard())
