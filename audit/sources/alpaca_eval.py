"""AlpacaEval pairwise annotations (tatsu-lab/alpaca_eval ``results/<MODEL>/<ANNOTATOR>/annotations.json``).

A JSON array, one object per instruction: ``instruction``, ``output_1`` / ``generator_1`` (the reference model,
e.g. gpt4_1106_preview for AlpacaEval 2.0), ``output_2`` / ``generator_2`` (the evaluated model), ``dataset``,
``annotator`` and ``preference``. For the weighted annotators ``preference`` is 1 + P(output_2 is better) from the
judge's token log-probabilities, a float in [1, 2]; for the others it is 1 (reference wins) or 2 (model wins),
and 0 for a draw. ``null`` means the annotator produced no verdict.

AlpacaEval grades preference against a reference, not correctness. Outcome here (documented in docs/adapters.md):

* win  (preference > 1.5): ``correct`` -- the judge preferred the model's answer to the reference;
* loss (1 <= preference < 1.5): ``wrong``;
* tie  (preference == 1.5, or 0 = the draw code): ``wrong``, with ``source_label = tie``. A tie is not a win;
  AlpacaEval's win rate counts it as half a win, which stays recoverable from ``original_score``.
* null / out of range: quarantined (no verdict to score).

``original_score`` keeps the preference verbatim; ``source_label`` is win / loss / tie; the grader names the
annotator and the reference (``alpaca_eval/<annotator>/vs=<generator_1>``). The judge's probability is the
*judge's* confidence, not the evaluated model's, so ``confidence`` stays null.

The sample id is a hash of the instruction (AlpacaEval has no ids; instructions are unique), so the same
instruction gets the same id for every model. ``model_outputs.json`` files beside the annotations carry the same
texts (``output_2``; the reference's as ``output_1``) and are read through the annotations.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

from audit.records import RecordBuilder, SourceBatch, coerce_text, require
from audit.sources import ReadContext, head, register
from audit.sources.jsonio import consume, iter_json_array

TIE = 1.5
_EPS = 1e-9


def instruction_id(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def verdict(preference: float) -> tuple[str, str]:
    """(source_label, outcome) for one preference value (already validated)."""
    if preference == 0 or abs(preference - TIE) <= _EPS:
        return "tie", "wrong"
    return ("win", "correct") if preference > TIE else ("loss", "wrong")


class AlpacaEval:
    name = "alpaca_eval"
    description = "AlpacaEval pairwise annotations (results/<MODEL>/<ANNOTATOR>/annotations.json; win = correct)"
    example = "../shared/data/alpaca_eval"

    def sniff(self, path: Path) -> bool:
        if not path.is_file() or path.suffix != ".json":
            return False
        h = head(path, 16384)
        return (h.lstrip().startswith(b"[") and b'"generator_2"' in h and b'"output_2"' in h
                and b'"preference"' in h and b'"instruction"' in h)

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        source_id = ctx.source_id(self.name, path)
        folder_annotator = path.parent.name
        b = RecordBuilder(source_id, benchmark="alpaca_eval")

        def convert(r: dict) -> dict:
            require(r, "instruction", "output_2", "generator_2", "preference")
            pref = r["preference"]
            if pref is None:
                raise ValueError("preference is null: the annotator gave no verdict")
            if isinstance(pref, bool):
                raise ValueError(f"preference {pref!r} is not a number")
            pref = float(pref)
            if not (pref == 0 or 1.0 - _EPS <= pref <= 2.0 + _EPS):
                raise ValueError(f"preference {pref} outside [1, 2] (or 0 = draw)")
            label, outcome = verdict(pref)
            annotator = coerce_text(r.get("annotator")) or folder_annotator
            reference = coerce_text(r.get("generator_1")) or "reference"
            instruction = coerce_text(r["instruction"]) or ""
            return dict(
                sample_id=instruction_id(instruction),
                model=coerce_text(r["generator_2"]),
                grader=f"alpaca_eval/{annotator}/vs={reference}",
                prompt=instruction,
                response=coerce_text(r["output_2"]),
                gold=coerce_text(r.get("output_1")),
                original_score=pref,
                source_label=label,
                outcome=outcome,
            )

        consume(b, iter_json_array(path, label=path.name), convert)
        yield b.finish(ctx.provenance(self.name, path, source_id))


def _is_model_outputs(p: Path) -> bool:
    """A model_outputs.json in an AlpacaEval results tree: its texts are read through the annotations."""
    if p.name != "model_outputs.json":
        return False
    results = p.parent.parent
    return any(results.glob("*/*/annotations.json"))


register(AlpacaEval(), auxiliary=_is_model_outputs)
