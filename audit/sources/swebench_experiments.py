"""SWE-bench/experiments submissions: ``evaluation/<split>/<YYYYMMDD_system>/results/results.json``.

``results.json`` maps a status to the instance ids that reached it. Current submissions list
``{"no_generation": [...], "no_logs": [...], "resolved": [...]}``; older ones carry the full report map
(``no_generation, generated, with_logs, install_fail, reset_failed, no_apply, applied, test_errored,
test_timeout, resolved``). The submission folder may also hold ``all_preds.jsonl`` (``instance_id``,
``model_patch``), ``metadata.yaml``, ``README.md`` and ``results/resolved_by_*.json``.

Records: one per distinct instance id named in results.json or all_preds.jsonl. Outcome: ``resolved`` -> correct;
every other instance -> wrong, with the most specific status as ``source_label`` (``no_generation`` = no patch
produced: a failure to answer, scored wrong by SWE-bench; it is not treated as an abstention). An id listed both
as resolved and as no_generation is contradictory and quarantined. Model = the submission folder name; benchmark
from ``<split>`` (verified, lite, test, multimodal, multilingual).

Limitation of the layout: current results.json files do not list unresolved instances that were evaluated; where
the folder has no all_preds.jsonl, those instances cannot be enumerated. The batch notes give how many are
implicit when the split size is known (verified 500, lite 300, test 2,294); accuracy over the ingested rows then
overstates the resolve rate, so prefer per-instance sources (leaderboards.json) where they exist.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

from audit.records import RecordBuilder, SourceBatch, coerce_text
from audit.sources import ReadContext, head, register
from audit.sources.jsonio import iter_jsonl, load_json
from audit.sources.swebench_leaderboard import GRADER, SPLIT_BENCHMARK

# Most specific first: the first status an id is listed under becomes its label.
STATUS_ORDER = ("resolved", "no_generation", "no_logs", "install_fail", "reset_failed", "no_apply", "test_errored",
                "test_timeout", "applied", "with_logs", "generated")
SPLIT_SIZE = {"verified": 500, "lite": 300, "test": 2294}
_RESOLVED = re.compile(rb'"resolved"\s*:\s*\[')


def _results_file(path: Path) -> Path:
    return path / "results" / "results.json" if path.is_dir() else path


def _looks_like_results(path: Path) -> bool:
    if path.name != "results.json" or path.parent.name != "results" or not path.is_file():
        return False
    h = head(path, 4096).lstrip()
    return h.startswith(b"{") and bool(_RESOLVED.search(h) or b'"no_generation"' in h)


class SwebenchExperiments:
    name = "swebench_experiments"
    description = "SWE-bench/experiments evaluation/<split>/<date_system>/results/results.json (status lists)"
    example = "evaluation/verified/20240620_sweagent_claude3.5sonnet (a SWE-bench/experiments checkout)"

    def sniff(self, path: Path) -> bool:
        if path.is_dir():
            return _looks_like_results(path / "results" / "results.json")
        return _looks_like_results(path)

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        results = _results_file(path)
        submission = results.parent.parent
        split = submission.parent.name.lower()
        if path == ctx.root and path.is_file():  # given the results.json itself: name the submission, not the file
            source_id = f"{self.name}:{split}/{submission.name}"
        else:
            source_id = ctx.source_id(self.name, path)
        prov = ctx.provenance(self.name, results, source_id)
        b = RecordBuilder(source_id, benchmark=SPLIT_BENCHMARK.get(split, f"swebench_{split}"), grader=GRADER,
                          model=submission.name)
        data, err = load_json(results)
        if err or not isinstance(data, dict):
            b.reject(results.name, None, err or f"expected an object of status lists, found {type(data).__name__}")
            yield b.finish(prov)
            return

        statuses: dict[str, set[str]] = {}
        order: list[str] = []  # instance ids in first-seen order, so the rows are deterministic
        for key, ids in data.items():
            if not isinstance(ids, list):
                b.reject(f"{results.name}:{key}", json.dumps(ids, default=str)[:2000],
                         f"status {key!r} is not a list of instance ids")
                continue
            for iid in ids:
                if not isinstance(iid, str) or not iid:
                    b.reject(f"{results.name}:{key}", json.dumps(iid, default=str)[:2000],
                             f"status {key!r} lists a non-text instance id")
                    continue
                if iid not in statuses:
                    statuses[iid] = set()
                    order.append(iid)
                statuses[iid].add(key)

        patches: dict[str, str | None] = {}
        preds = submission / "all_preds.jsonl"
        if preds.is_file():
            for item in iter_jsonl(preds):
                r = item.record
                if item.error or not isinstance(r, dict) or not isinstance(r.get("instance_id"), str):
                    b.reject(item.locator, item.raw if isinstance(item.raw, str) else None,
                             item.error or "prediction without an instance_id")
                    continue
                iid = r["instance_id"]
                if iid in patches:
                    b.reject(item.locator, item.raw, f"second prediction for {iid}; first kept")
                    continue
                patches[iid] = coerce_text(r.get("model_patch"))
                if iid not in statuses:
                    statuses[iid] = set()
                    order.append(iid)

        for iid in order:
            st = statuses[iid]
            if "resolved" in st and "no_generation" in st:
                b.reject(f"{results.name}:{iid}", ", ".join(sorted(st)),
                         f"instance {iid} is listed both as resolved and as no_generation")
                continue
            label = next((s for s in STATUS_ORDER if s in st), None) or (sorted(st)[0] if st else "unresolved")
            if label in ("applied", "with_logs", "generated"):
                label = "unresolved"
            resolved = label == "resolved"
            b.add(sample_id=iid, response=patches.get(iid), original_score=1.0 if resolved else 0.0,
                  source_label=label, outcome="correct" if resolved else "wrong")

        batch = b.finish(prov)
        size = SPLIT_SIZE.get(split)
        n = batch.responses.num_rows
        if size and n < size:
            batch.notes.append(f"{submission.name}: {size - n} of the {size} {split} instances are not listed "
                               "(evaluated and unresolved, implicit in this layout)")
        yield batch


register(SwebenchExperiments())
