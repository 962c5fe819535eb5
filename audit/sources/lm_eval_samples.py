"""lm-evaluation-harness ``--log_samples`` output: ``samples_<task>_<timestamp>.jsonl``.

One JSON object per document: ``doc_id``, ``doc``, ``target``, ``arguments``, ``resps``, ``filtered_resps`` and one
key per metric (``acc``, ``exact_match``, ``bleu_acc``...). The model name comes from the sibling
``results_<timestamp>.json`` (``model_name`` or ``pretrained=`` in ``model_args``), else from the folder name.

Multiple-choice (log-likelihood) tasks keep, per choice, ``[loglikelihood, is_greedy]``: the chosen answer is the
arg-max and its confidence the softmax of the log-likelihoods over the choices. Such a task cannot express an
abstention (there is no "I don't know" choice).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit.confidence import choice_scores, softmax_choice
from audit.records import RecordBuilder, SourceBatch, batch_from_table, coerce_text, require
from audit.sources import ReadContext, first_jsonl_line, register
from audit.sources.jsonio import consume, iter_jsonl, line_locators, load_json, read_jsonl_arrow

_NAME = re.compile(r"samples_(?P<task>.+?)_(?P<ts>\d{4}-\d{2}-\d{2}T[\d\-.:]+)\.jsonl$")
_STANDARD = {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "doc_hash", "prompt_hash",
             "target_hash", "filter", "metrics"}
# Preferred primary metrics, most binary first. The first one present in a record decides the outcome.
PRIMARY_METRICS = ("acc", "exact_match", "prompt_level_strict_acc", "mc1", "bleu_acc", "rouge1_acc", "acc_norm",
                   "inst_level_strict_acc", "pass@1", "f1", "mc2")


def model_from_results(folder: Path, timestamp: str | None) -> str | None:
    candidates = sorted(folder.glob(f"results_{timestamp}.json")) if timestamp else []
    candidates += sorted(folder.glob("results_*.json"))
    for f in candidates:
        data, err = load_json(f)
        if err or not isinstance(data, dict):
            continue
        if data.get("model_name"):
            return str(data["model_name"])
        args = str((data.get("config") or {}).get("model_args") or "")
        m = re.search(r"(?:pretrained|model)=([^,]+)", args)
        if m:
            return m.group(1)
    return None


class LmEvalSamples:
    name = "lm_eval_samples"
    description = "lm-evaluation-harness --log_samples JSONL (samples_<task>_<timestamp>.jsonl)"
    example = "../shared/data/truthfulqa_multi/results/gen/en"

    def sniff(self, path: Path) -> bool:
        first = first_jsonl_line(path)
        if first is None:
            return False
        return b'"doc_id"' in first and b'"resps"' in first and b'"filtered_resps"' in first

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        m = _NAME.search(path.name)
        task = m.group("task") if m else path.stem.removeprefix("samples_")
        model = model_from_results(path.parent, m.group("ts") if m else None) or path.parent.name.replace("__", "/")
        source_id = ctx.source_id(self.name, path)
        fast = _read_vectorised(path, task, model, source_id, ctx.provenance(self.name, path, source_id))
        if fast is not None:
            yield fast
            return
        b = RecordBuilder(source_id, benchmark=task, model=model)

        def convert(r: dict) -> dict:
            require(r, "doc_id", "filtered_resps")
            metric = next((k for k in PRIMARY_METRICS if k in r), None)
            if metric is None:
                extra = [k for k, v in r.items() if k not in _STANDARD and isinstance(v, (int, float))]
                if not extra:
                    raise KeyError("no metric key in the sample (expected one of acc, exact_match, ...)")
                metric = extra[0]
            score = float(r[metric])
            filtered = r["filtered_resps"]
            lls = choice_scores(filtered)
            confidence = None
            if lls is not None:  # log-likelihood multiple choice
                chosen, confidence = softmax_choice(lls)
                answer: str | None = str(chosen)
                response = json.dumps(lls)
            else:
                response = coerce_text(filtered[0] if isinstance(filtered, list) and filtered else filtered)
                answer = response
            doc = r.get("doc") if isinstance(r.get("doc"), dict) else {}
            prompt = coerce_text(doc.get("question") or doc.get("query") or doc.get("problem"))
            return dict(
                sample_id=r["doc_id"],
                grader=f"lm_eval/{task}/{metric}",
                prompt=prompt,
                response=response,
                extracted_answer=answer,
                gold=coerce_text(r.get("target")),
                original_score=score,
                outcome="correct" if score >= 1.0 else "wrong",
                confidence=confidence,
            )

        consume(b, iter_jsonl(path), convert)
        yield b.finish(ctx.provenance(self.name, path, source_id))


# A primary metric given as JSON null: convert() rejects such a record, Arrow would read it as "absent".
_NULL_METRIC = re.compile(rb'"(?:' + b"|".join(re.escape(m.encode()) for m in PRIMARY_METRICS) + rb')"\s*:\s*null')


def _projection(inferred: pa.Schema) -> pa.Schema | None:
    """Only the columns convert() reads: ids, responses and target as inferred from the first block, every
    primary metric as float64 (so one first seen later is not missed), the doc's prompt fields as text."""
    if "doc_id" not in inferred.names or "filtered_resps" not in inferred.names:
        return None
    fields = [inferred.field("doc_id"), inferred.field("filtered_resps")]
    if "target" in inferred.names:
        fields.append(inferred.field("target"))
    fields += [pa.field(m, pa.float64()) for m in PRIMARY_METRICS]
    if "doc" in inferred.names:
        fields.append(pa.field("doc", pa.struct([pa.field(k, pa.string()) for k in ("question", "query", "problem")])))
    return pa.schema(fields)


def _read_vectorised(path: Path, task: str, model: str, source_id: str, prov) -> SourceBatch | None:
    """The same conversion as ``convert`` above, on whole Arrow columns, for a clean generation-task file.

    Used only when pyarrow.json parses the whole file and every column has the shape ``convert`` would accept
    without question (integer/text doc_id, a numeric primary metric present in every line, filtered_resps of one
    text per sample, text target); anything else returns None and the per-line path reads the file (and
    quarantines what it must). Log-likelihood (multiple-choice) files always take the per-line path.
    """
    parsed = read_jsonl_arrow(path, project=_projection, reject=_NULL_METRIC)
    if parsed is None:
        return None
    t, _ = parsed
    n = t.num_rows
    names = set(t.column_names)
    if n == 0 or not {"doc_id", "filtered_resps"} <= names:
        return None
    # convert() takes, per record, the first primary metric present: here it must be the same one for every row.
    present = [k for k in PRIMARY_METRICS if k in names and t[k].null_count < n]
    if not present:
        return None
    metric = present[0]
    doc_id, filtered, score = t["doc_id"], t["filtered_resps"], t[metric]
    if not (pa.types.is_integer(doc_id.type) or pa.types.is_string(doc_id.type)) or doc_id.null_count:
        return None
    if not (pa.types.is_integer(score.type) or pa.types.is_floating(score.type)) or score.null_count:
        return None
    if pa.types.is_list(filtered.type) and pa.types.is_string(filtered.type.value_type):
        if filtered.null_count or not pc.all(pc.equal(pc.list_value_length(filtered), 1)).as_py():
            return None  # two or more entries may be log-likelihoods: the per-line path decides
        response = pc.list_element(filtered, 0)
    elif pa.types.is_string(filtered.type):
        response = filtered
    else:
        return None
    prompt = pa.nulls(n, pa.string())
    if "doc" in names and pa.types.is_struct(t["doc"].type):
        doc = t["doc"].combine_chunks()
        if doc.null_count:
            return None
        # coerce_text(doc.get("question") or doc.get("query") or doc.get("problem")): the first non-empty text,
        # else the last operand as it is ("" where the doc gives "problem": "", nothing where it gives none)
        for i, key in enumerate(reversed(("question", "query", "problem"))):
            if doc.type.get_field_index(key) < 0:
                continue
            v = pc.struct_field(doc, key)
            if not pa.types.is_string(v.type):
                return None
            prompt = v if i == 0 else pc.if_else(pc.fill_null(pc.greater(pc.utf8_length(v), 0), False), v, prompt)
    elif "doc" in names:
        return None
    if "target" in names:
        target = t["target"]
        if not (pa.types.is_string(target.type) or pa.types.is_integer(target.type)):
            return None
        gold = pc.cast(target, pa.string())
    else:
        gold = pa.nulls(n, pa.string())
    score = pc.cast(score, pa.float64())
    table = pa.table({
        "source_id": pa.array([source_id] * 1, pa.string()).take(np.zeros(n, dtype=np.int64)),
        "benchmark": pa.array([task], pa.string()).take(np.zeros(n, dtype=np.int64)),
        "grader": pa.array([f"lm_eval/{task}/{metric}"], pa.string()).take(np.zeros(n, dtype=np.int64)),
        "model": pa.array([model], pa.string()).take(np.zeros(n, dtype=np.int64)),
        "sample_id": pc.cast(doc_id, pa.string()),
        "prompt": prompt,
        "response": response,
        "extracted_answer": response,
        "gold": gold,
        "original_score": score,
        "source_label": pa.nulls(n, pa.string()),
        "outcome": pc.if_else(pc.greater_equal(score, 1.0), "correct", "wrong"),
        "abstention_reason": pa.nulls(n, pa.string()),
        "confidence": pa.nulls(n, pa.float64()),
        "ingest_run_id": pa.nulls(n, pa.string()),
    })
    batch = batch_from_table(table, line_locators(path.name, n), prov)
    if batch is not None:
        batch.notes.append("read vectorised (pyarrow.json)")
    return batch


register(LmEvalSamples(), auxiliary=lambda p: p.name.startswith("results_") and p.suffix == ".json")
