"""lighteval ``--save-details`` parquet (``details/<model>/<date>/details_<suite>|<task>|<shots>_<date>.parquet``).

One row per document. Two published layouts are read:

* the ``Detail`` dataclass layout (lighteval up to 0.9, and the Open LLM Leaderboard v1 ``details_<org>__<model>``
  repos): ``example``, ``instruction``, ``full_prompt``, ``predictions``, ``gold``, ``choices``, ``gold_index``,
  ``metrics`` (struct: metric -> value), ``specifics``, token columns;
* the newer layout: ``doc`` (struct with ``query``, ``choices``, ``gold_index``, ``id``), ``model_response``
  (struct with ``text`` and, for log-likelihood tasks, ``logprobs``) and ``metric`` (struct).

The first metric present of ``METRICS`` decides the outcome (value >= 1 is correct). Log-likelihood
(multiple-choice) rows keep the per-choice log-probabilities as the response (a JSON list); the extracted answer
is the arg-max index and the confidence its softmax over the choices. The older layout has no document id: the
sample id is a hash of the example text and its choices, which is stable across models and runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterator

import pyarrow.parquet as pq

from audit.confidence import choice_scores, softmax_choice
from audit.records import RecordBuilder, SourceBatch, coerce_text
from audit.sources import ReadContext, register
from audit.sources.jsonio import Item, consume

METRICS = ("acc_norm", "acc", "em", "quasi_exact_match", "exact_match", "extractive_match", "prefix_exact_match",
           "quasi_prefix_exact_match", "maj@4", "pass@1", "mc1", "f1", "f1_score")
_NAME = re.compile(r"^details_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.:]+)$")
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}T[\d\-.:]+$")
OLD = {"example", "predictions", "metrics"}
NEW = {"doc", "model_response", "metric"}


def _columns(path: Path) -> set[str]:
    try:
        return set(pq.read_schema(path).names)
    except Exception:  # noqa: BLE001 - unreadable parquet: not ours
        return set()


def task_and_model(path: Path) -> tuple[str, str]:
    m = _NAME.match(path.stem)
    task = m.group("task") if m else path.stem.removeprefix("details_")
    parts = list(path.parent.parts)
    if parts and _DATE_DIR.match(parts[-1]):
        parts = parts[:-1]
    model = None
    if "details" in parts:
        i = len(parts) - 1 - parts[::-1].index("details")
        if parts[i + 1:]:
            model = "/".join(parts[i + 1:])
    if model is None:
        for part in reversed(parts):
            if part.startswith("details_") and "__" in part:
                model = part.removeprefix("details_").replace("__", "/", 1)
                break
    return task, model or (parts[-1] if parts else "unknown-model")


def benchmark_of(task: str) -> str:
    """``lighteval|gsm8k|5`` -> ``gsm8k``; ``harness|arc:challenge|25`` -> ``arc_challenge`` (lighteval's ``:``
    subset separator becomes ``_``, the harness spelling the benchmark registry knows)."""
    bits = task.split("|")
    return (bits[1] if len(bits) >= 3 else task).replace(":", "_")


def _metric(metrics: Any) -> tuple[str, float]:
    if not isinstance(metrics, dict):
        raise KeyError("no metrics struct in the row")
    name = next((k for k in METRICS if metrics.get(k) is not None), None)
    if name is None:
        name = next((k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)), None)
    if name is None:
        raise KeyError("no numeric metric value in the row")
    return name, float(metrics[name])


def _gold(choices: Any, gold_index: Any, gold: Any) -> str | None:
    idx = gold_index if isinstance(gold_index, list) else ([gold_index] if gold_index is not None else [])
    if isinstance(choices, list) and choices and idx:
        try:
            return coerce_text([choices[int(i)] for i in idx])
        except (IndexError, ValueError, TypeError):
            pass
    return coerce_text(gold)


def convert_row(r: dict, task: str) -> dict:
    if "doc" in r and "model_response" in r:  # newer layout
        doc = r.get("doc") or {}
        resp = r.get("model_response") or {}
        metric, score = _metric(r.get("metric"))
        example, choices, gold_index = doc.get("query"), doc.get("choices"), doc.get("gold_index")
        preds: Any = resp.get("logprobs") if resp.get("logprobs") else resp.get("text")
        gold = None
        sid = doc.get("id")
    else:
        metric, score = _metric(r.get("metrics"))
        example, choices, gold_index = r.get("example"), r.get("choices"), r.get("gold_index")
        preds = r.get("predictions")
        gold = r.get("gold")
        sid = None
    if example is None:
        raise KeyError("missing key(s): example / doc.query")
    if sid in (None, ""):
        key = json.dumps([example, choices or []], ensure_ascii=False, default=str)
        sid = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    lps = choice_scores(preds) if isinstance(choices, list) and len(choices) >= 2 else None
    confidence = None
    if lps is not None:
        chosen, confidence = softmax_choice(lps)
        response, answer = json.dumps(lps), str(chosen)
    else:
        first = preds[0] if isinstance(preds, list) and preds else preds
        response = coerce_text(first)
        answer = response
    return dict(sample_id=sid, grader=f"lighteval/{task}/{metric}", prompt=coerce_text(example), response=response,
                extracted_answer=answer, gold=_gold(choices, gold_index, gold), original_score=score,
                outcome="correct" if score >= 1.0 else "wrong", confidence=confidence)


class LightevalDetails:
    name = "lighteval_details"
    description = "lighteval --save-details parquet (details/<model>/<date>/details_<suite>|<task>|<shots>_<date>.parquet)"
    example = "details/org/model/2025-01-01T00-00-00.000000/details_lighteval|gsm8k|5_2025-01-01T00-00-00.000000.parquet"

    def sniff(self, path: Path) -> bool:
        if not path.is_file() or path.suffix != ".parquet":
            return False
        cols = _columns(path)
        return OLD <= cols or NEW <= cols

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        task, model = task_and_model(path)
        source_id = ctx.source_id(self.name, path)
        b = RecordBuilder(source_id, benchmark=benchmark_of(task), model=model)
        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as e:  # noqa: BLE001 - arrow raises many types for a damaged file
            raise ValueError(f"{path}: cannot read as a lighteval details parquet: {type(e).__name__}: {e}") from None
        items = (Item(f"{path.name}[{i}]", record=r, raw=json.dumps(r, default=str)[:2000]) for i, r in enumerate(rows))
        consume(b, items, lambda r: convert_row(r, task))
        yield b.finish(ctx.provenance(self.name, path, source_id))


register(LightevalDetails())
