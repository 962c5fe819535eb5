"""WildBench v2 per-model judge scores (allenai/WildBench ``eval_results/<version>/score.v2/eval=<judge>/<MODEL>.json``).

A JSON array, one object per task: ``session_id``, ``model_test`` (e.g. ``google/gemma-2b-it``), ``model_output``,
``score`` (a **string** "1".."10" given by an LM judge against a per-task checklist), ``parsed_result`` (the judge's
strengths / weaknesses) and ``meta_data`` (batch id, token usage, ``error``).

WildBench is not a correct/wrong benchmark. The judge's 1-10 rubric reads: 1-2 very poor, 3-4 poor (does not help
solve the problem), 5-6 fair *but with issues such as factual errors, hallucinations or missing key information*,
7-8 good enough, 9-10 perfect. We therefore call a response **correct when the judge gave it 7 or more**
(``CORRECT_AT``): the lowest band the rubric describes as free of factual errors. 5-6 is not credited because the
rubric itself says such answers contain errors or hallucinations, which is exactly what a correctness audit counts
as wrong. The raw grade is kept in ``original_score`` (and ``source_label`` = ``score=<n>``) so any other cut-off
can be applied later without re-reading the files. WB-Score's own rescaling, (score - 5) * 2, puts its zero at 5;
the cut-off here is deliberately stricter.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from audit.records import RecordBuilder, SourceBatch, coerce_text, require
from audit.sources import ReadContext, head, register
from audit.sources.jsonio import consume, iter_json_array

CORRECT_AT = 7.0
_JUDGE = re.compile(r"eval=(?P<judge>[^/]+)")
_VERSION = re.compile(r"(?P<version>v\d+(?:\.\d+)?)/(?P<mode>score\.v\d+|score)")


def outcome_for(score: float) -> str:
    return "correct" if score >= CORRECT_AT else "wrong"


class WildBench:
    name = "wildbench"
    description = "WildBench v2 judge scores (eval_results/<ver>/score.v2/eval=<judge>/<MODEL>.json; 1-10, >=7 correct)"
    example = "../shared/data/wildbench"

    def sniff(self, path: Path) -> bool:
        if not path.is_file() or path.suffix != ".json":
            return False
        h = head(path, 16384)
        return (h.lstrip().startswith(b"[") and b'"session_id"' in h and b'"model_test"' in h
                and b'"score"' in h and b'"model_output"' in h)

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        posix = path.as_posix()
        m = _JUDGE.search(posix)
        judge = m.group("judge") if m else "unknown-judge"
        v = _VERSION.search(posix)
        version = v.group("version") if v else "v2"
        grader = f"wildbench/{version}/score/{judge}"
        source_id = ctx.source_id(self.name, path)
        b = RecordBuilder(source_id, benchmark="wildbench", grader=grader, model=path.stem)

        def convert(r: dict) -> dict:
            require(r, "session_id", "score", "model_output")
            err = (r.get("meta_data") or {}).get("error") if isinstance(r.get("meta_data"), dict) else None
            if err:
                raise ValueError(f"judge call failed: {err}")
            raw = r["score"]
            try:
                score = float(str(raw).strip())
            except ValueError:
                raise ValueError(f"score {raw!r} is not a number") from None
            if not 1.0 <= score <= 10.0:
                raise ValueError(f"score {score} outside the rubric's 1-10")
            return dict(
                sample_id=r["session_id"],
                model=coerce_text(r.get("model_test")) or path.stem,
                response=coerce_text(r["model_output"]),
                original_score=score,
                source_label=f"score={str(raw).strip()}",
                outcome=outcome_for(score),
            )

        consume(b, iter_json_array(path, label=path.name), convert)
        yield b.finish(ctx.provenance(self.name, path, source_id))


register(WildBench())
