"""Inspect AI evaluation logs in the JSON log format (``logs/<timestamp>_<task>_<id>.json``).

An ``EvalLog`` object: ``version``, ``status``, ``eval`` (``task``, ``task_id``, ``model``, ``dataset`` ...),
``plan``, ``results`` (``scores``: [{``name``, ``scorer``, ``metrics``}]), ``stats`` and ``samples``: each with
``id``, ``epoch``, ``input`` (text or chat messages), ``target``, ``messages``, ``output`` (``model``,
``choices`` [{``message`` {``content``}}], ``completion``) and ``scores`` ({scorer: {``value``, ``answer``,
``explanation``, ``metadata``}}).

The first scorer in ``results.scores`` (else the first in the sample) grades. Inspect's value codes: ``C``
correct, ``I`` incorrect, ``P`` partial (0.5; not correct), ``N`` no answer (Inspect scores it 0, as incorrect; we
keep it wrong with ``source_label = N``: an unparsed answer is not an abstention, and the abstention detector
still reads the text). Numbers and booleans: >= 1 / true is correct. Samples of epoch > 1 get ``#epoch<n>``
appended to their id. The binary ``.eval`` (zip) log format is not read here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from audit.records import RecordBuilder, SourceBatch, coerce_text
from audit.sources import ReadContext, head, register
from audit.sources.jsonio import Item, consume, load_json

CODES = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}


def _text(content: Any) -> str | None:
    """Message content: a string, or a list of content parts ({type: text, text: ...})."""
    if isinstance(content, list):
        parts = [c.get("text") if isinstance(c, dict) else c for c in content
                 if not isinstance(c, dict) or c.get("type") in (None, "text")]
        return coerce_text([p for p in parts if p is not None])
    return coerce_text(content)


def _input_text(value: Any) -> str | None:
    if isinstance(value, list):
        users = [m for m in value if isinstance(m, dict) and m.get("role") == "user"]
        return _text(users[-1].get("content")) if users else None
    return coerce_text(value)


def score_value(value: Any) -> tuple[float, str | None]:
    """(score, source label) for an Inspect score value."""
    if isinstance(value, bool):
        return (1.0 if value else 0.0), None
    if isinstance(value, (int, float)):
        return float(value), None
    if isinstance(value, str):
        v = value.strip()
        if v.upper() in CODES:
            return CODES[v.upper()], v.upper()
        try:
            return float(v), None
        except ValueError:
            raise ValueError(f"score value {value!r} is not C/I/P/N or a number") from None
    raise ValueError(f"score value of type {type(value).__name__} (a dict of several values?) is not supported")


class InspectLog:
    name = "inspect_log"
    description = "Inspect AI JSON eval log (logs/<ts>_<task>_<id>.json: eval, samples[].scores)"
    example = "logs/2024-05-29T12-38-43_gpqa-diamond_ABCDEF.json"

    def sniff(self, path: Path) -> bool:
        if not path.is_file() or path.suffix != ".json":
            return False
        h = head(path, 8192)
        return h.lstrip().startswith(b"{") and b'"eval"' in h and b'"status"' in h and b'"task_id"' in h

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        log, err = load_json(path)
        if err or not isinstance(log, dict):
            raise ValueError(f"{path}: {err or 'expected an object'}")
        ev = log.get("eval") or {}
        task = str(ev.get("task") or path.stem).split("/")[-1]
        model = coerce_text(ev.get("model"))
        scorers = [s.get("scorer") or s.get("name") for s in ((log.get("results") or {}).get("scores") or [])
                   if isinstance(s, dict)]
        source_id = ctx.source_id(self.name, path)
        b = RecordBuilder(source_id, benchmark=task, model=model)
        samples = log.get("samples")
        if samples is None:
            items: Any = [Item(path.name, error=f"log has no samples (status {log.get('status')!r}; "
                                                "written with --no-log-samples?)")]
        elif not isinstance(samples, list):
            items = [Item(path.name, error="samples is not a list")]
        else:
            items = (Item(f"{path.name}:samples[{i}]", record=s, raw=s) for i, s in enumerate(samples))

        def convert(s: dict) -> dict:
            if "id" not in s:
                raise KeyError("missing key(s): id")
            scores = s.get("scores") or {}
            if not isinstance(scores, dict) or not scores:
                raise KeyError("sample has no scores")
            scorer = next((n for n in scorers if n in scores), next(iter(scores)))
            sc = scores[scorer] or {}
            score, label = score_value(sc.get("value"))
            out = s.get("output") or {}
            response = coerce_text(out.get("completion"))
            if response is None:
                choices = out.get("choices") or []
                if choices and isinstance(choices[0], dict):
                    response = _text((choices[0].get("message") or {}).get("content"))
            epoch = int(s.get("epoch") or 1)
            sid = str(s["id"]) + (f"#epoch{epoch}" if epoch > 1 else "")
            return dict(sample_id=sid, grader=f"inspect/{task}/{scorer}", prompt=_input_text(s.get("input")),
                        response=response, extracted_answer=coerce_text(sc.get("answer")),
                        gold=coerce_text(s.get("target")), original_score=score, source_label=label,
                        outcome="correct" if score >= 1.0 else "wrong")

        consume(b, items, convert)
        yield b.finish(ctx.provenance(self.name, path, source_id))


register(InspectLog())
