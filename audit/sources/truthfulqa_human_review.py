"""TruthfulQA human review CSV: model answers labelled by people for truthfulness and informativeness.

Seen in hitz-zentroa/truthfulqa-multi (``judge/manual_review/evaluated/<lang>.csv``, 300 answers per language).
Columns: ``id`` = ``<doc_id>__<model>``, ``question``, ``correct_answers`` / ``incorrect_answers``
(newline-separated; the correct ones include "I have no comment."), ``model_answer``, ``truthfulness`` and
``informativeness`` (``yes`` / ``no``), and two annotation-revision columns (``changed``, ``antes``).

The grader is the human truthfulness judgement, TruthfulQA's headline criterion: ``truthfulness = yes`` ->
correct (``original_score`` 1), ``no`` -> wrong (0). An answer that abstains ("I have no comment") is truthful by
the benchmark's definition, so its row keeps ``original_score`` 1 while the abstention detector marks it
abstained: that pair is the empirical evidence that this grader credits abstaining. ``source_label`` keeps both
labels (``truthful=yes;informative=no``). ``sample_id`` is the TruthfulQA ``doc_id``, the same id the
lm-evaluation-harness samples carry, and the model is named as that repository's lm-eval output folders name it
(``google/gemma-2-27b-it`` for ``gemma-2-27b-it``) when they sit beside the CSV, so a human label joins the
automatic grade of the same answer.
A row whose labels are not yes/no, or whose id is not ``<doc_id>__<model>``, is quarantined.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Iterator

from audit.records import RecordBuilder, SourceBatch, coerce_text, require
from audit.sources import ReadContext, head, register
from audit.sources.jsonio import Item, consume

_HEADER = (b"model_answer", b"truthfulness", b"informativeness")
_ID = re.compile(r"^(\d+)__(.+)$")
_YES_NO = {"yes": True, "no": False}


class TruthfulQAHumanReview:
    name = "truthfulqa_human_review"
    description = "TruthfulQA human review CSV (id=<doc_id>__<model>, model_answer, truthfulness/informativeness yes/no)"
    example = "../shared/data/truthfulqa_multi/judge/manual_review/evaluated/en.csv"
    grader = "human/truthfulness"

    def sniff(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() != ".csv":
            return False
        first = head(path, 4096).split(b"\n", 1)[0]
        return first.startswith(b"id,") and all(k in first for k in _HEADER)

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        source_id = ctx.source_id(self.name, path)
        b = RecordBuilder(source_id, benchmark="truthfulqa_gen", grader=self.grader)
        full_names = _full_model_names(path)
        consume(b, _rows(path), lambda row: _convert(row, full_names))
        yield b.finish(ctx.provenance(self.name, path, source_id))


def _rows(path: Path) -> Iterator[Item]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        yield Item(f"{path.name}", error=f"not UTF-8 text ({e.reason} at byte {e.start}): re-save the file as UTF-8",
                   raw=None)
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for n, row in enumerate(reader, start=1):
        loc = f"{path.name}:record {n} (line {reader.line_num})"
        if None in row:  # more fields than the header names
            yield Item(loc, error=f"{len(row[None])} field(s) beyond the header", raw=row)
        else:
            yield Item(loc, record=row)


def _label(row: dict, key: str) -> bool:
    value = (row.get(key) or "").strip().lower()
    if value not in _YES_NO:
        raise ValueError(f"{key} is {row.get(key)!r}, expected yes or no")
    return _YES_NO[value]


def _full_model_names(path: Path) -> dict[str, str]:
    """The CSV ids drop the organisation (``gemma-2-27b-it``); the same repository's lm-eval output folders
    (``results/gen/<lang>/<org>__<model>``) carry it. Use them, when present, so both graders name one model."""
    root = path
    for _ in range(4):  # `.parent` only: the path may be a zip member (audit.sources.archive.ArchivePath)
        root = root.parent
        runs = root / "results" / "gen" / path.stem
        if runs.is_dir():
            return {d.name.split("__", 1)[1]: d.name.replace("__", "/", 1)
                    for d in runs.iterdir() if d.is_dir() and "__" in d.name}
    return {}


def _convert(row: dict, full_names: dict[str, str]) -> dict:
    require(row, "id", "model_answer", "truthfulness", "informativeness")
    m = _ID.match((row["id"] or "").strip())
    if not m:
        raise ValueError(f"id {row['id']!r} is not <doc_id>__<model>")
    truthful, informative = _label(row, "truthfulness"), _label(row, "informativeness")
    return dict(
        sample_id=m.group(1),
        model=full_names.get(m.group(2), m.group(2)),
        prompt=coerce_text(row.get("question")),
        response=coerce_text(row["model_answer"]),
        gold=coerce_text(row.get("correct_answers")),
        original_score=1.0 if truthful else 0.0,
        outcome="correct" if truthful else "wrong",
        source_label=f"truthful={'yes' if truthful else 'no'};informative={'yes' if informative else 'no'}",
    )


register(TruthfulQAHumanReview())
