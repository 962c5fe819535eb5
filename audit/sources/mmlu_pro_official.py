"""Official MMLU-Pro harness output (TIGER-AI-Lab/MMLU-Pro ``eval_results/model_outputs_<MODEL>_<N>shots.json``).

A JSON array, one object per question: ``question_id``, ``options``, gold ``answer`` (letter), ``pred`` (the letter
the harness's regex extracted, or null when nothing parsed) and the raw text in ``generated_text`` or, for some
models, ``model_outputs``. The official ``compute_accuracy.py`` replaces a null ``pred`` with a random letter; we
keep it as what it is (no answer extracted: outcome wrong, label ``pred=null``) and let the grading classifier
record that the official grader guesses for the model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from audit.records import RecordBuilder, SourceBatch, coerce_text, require
from audit.sources import ReadContext, head, register
from audit.sources.jsonio import consume, iter_json_array

_NAME = re.compile(r"model_outputs_(?P<model>.+?)(?:_(?P<shots>\d+)shots?)?\.json$")
_TEXT_FIELDS = ("generated_text", "model_outputs")
LETTERS = "ABCDEFGHIJKLMNOP"


class MmluProOfficial:
    name = "mmlu_pro_official"
    description = "Official MMLU-Pro harness JSON (model_outputs_<MODEL>_<N>shots.json; pred null = unparsed)"
    example = "../shared/data/mmlu_pro_tiger"
    grader = "mmlu_pro_official"

    def sniff(self, path: Path) -> bool:
        if not path.is_file() or path.suffix != ".json":
            return False
        h = head(path, 16384)
        return h.lstrip().startswith(b"[") and b'"question_id"' in h and b'"answer_index"' in h and b'"pred"' in h

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        m = _NAME.search(path.name)
        model = m.group("model") if m else path.stem
        source_id = ctx.source_id(self.name, path)
        b = RecordBuilder(source_id, benchmark="mmlu_pro", grader=self.grader, model=model)

        def convert(r: dict) -> dict:
            require(r, "question_id", "answer", "pred")
            field = next((f for f in _TEXT_FIELDS if f in r), None)
            if field is None:
                raise KeyError(f"missing key(s): one of {', '.join(_TEXT_FIELDS)}")
            pred, gold = r["pred"], r["answer"]
            options = r.get("options") or []
            prompt = coerce_text(r.get("question"))
            if prompt is not None and isinstance(options, list) and options:
                prompt += "\n" + "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options[: len(LETTERS)]))
            if pred is None:
                score, label, outcome = None, "pred=null", "wrong"
            else:
                score = 1.0 if pred == gold else 0.0
                label, outcome = None, "correct" if pred == gold else "wrong"
            return dict(
                sample_id=r["question_id"],
                prompt=prompt,
                response=coerce_text(r[field]),
                extracted_answer=coerce_text(pred),
                gold=coerce_text(gold),
                original_score=score,
                source_label=label,
                outcome=outcome,
            )

        consume(b, iter_json_array(path, label=path.name), convert)
        yield b.finish(ctx.provenance(self.name, path, source_id))


register(MmluProOfficial())
