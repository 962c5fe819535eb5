"""Open LLM Leaderboard v2 details (Hugging Face datasets ``open-llm-leaderboard/<org>__<model>-details``).

The details repos hold lm-evaluation-harness ``--log_samples`` output, one config per task
(``<org>__<model>__leaderboard_<task>``, splits ``<timestamp>`` and ``latest``). The Hub's parquet view of a config
and a local copy of the same layout (``<task>/samples_<task>_<timestamp>.parquet``, or
``<config>/<split>/0000.parquet``) carry one row per document with the harness columns:
``doc_id``, ``doc`` (struct), ``target``, ``arguments`` (``gen_args_<i>`` structs of ``arg_0`` context / ``arg_1``
continuation), ``resps``, ``filtered_resps``, ``doc_hash``, ``prompt_hash``, ``target_hash`` and one column per
metric (``acc_norm`` for BBH / GPQA / MuSR, ``acc`` for MMLU-Pro, ``exact_match`` for MATH-hard,
``prompt_level_strict_acc`` ... for IFEval).

Files are loaded with ``datasets`` (``load_dataset("parquet", data_files=...)``: offline, no remote code).
``load_from_hub`` reads a config straight from the Hub with the same conversion (never ``trust_remote_code``).

Multiple-choice rows keep the per-choice log-likelihoods (``filtered_resps`` = ``[[ll, is_greedy], ...]``): the
response column stores them as a JSON list, the extracted answer is the index the metric picks (arg-max of the
log-likelihoods, each divided by the choice's character length for ``acc_norm``, as the harness does) and the
confidence is the softmax of those same scores at that index.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow.parquet as pq

from audit.confidence import choice_scores, softmax_choice
from audit.records import RecordBuilder, SourceBatch, coerce_text
from audit.sources import ReadContext, register
from audit.sources.jsonio import Item, consume

METRICS = ("acc_norm", "acc", "exact_match", "prompt_level_strict_acc", "inst_level_strict_acc", "mc1", "mc2",
           "pass@1", "f1")
_SAMPLES = re.compile(r"samples_(?P<task>.+?)_(?P<ts>\d{4}-\d{2}-\d{2}T[\d\-.:]+)$")
_CONFIG = re.compile(r"^(?P<model>.+?__.+?)__(?P<task>[^_].*)$")


def _columns(path: Path) -> set[str]:
    try:
        return set(pq.read_schema(path).names)
    except Exception:  # noqa: BLE001 - not a readable parquet: not ours
        return set()


def task_and_model(path: Path) -> tuple[str, str | None]:
    """Task and model from the details layout's file and folder names."""
    task = None
    model = None
    m = _SAMPLES.search(path.stem)
    if m:
        task = m.group("task")
    for part in reversed(path.parent.parts):
        c = _CONFIG.match(part)
        if c and task is None:
            task, model = c.group("task"), c.group("model").replace("__", "/", 1)
            continue
        if part.endswith("-details") and "__" in part:
            model = model or part.removesuffix("-details").replace("__", "/", 1)
        elif part.startswith("details_") and "__" in part:
            model = model or part.removeprefix("details_").replace("__", "/", 1)
        elif "__" in part and model is None and not part.startswith("samples_"):
            model = part.replace("__", "/", 1)
    if task is None:  # <task>/<split>/0000.parquet or <task>/<file>.parquet
        parent = path.parent
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d\-.:_]+|latest|train|test", parent.name):
            parent = parent.parent
        task = parent.name
    task = task.removeprefix(f"{(model or '').replace('/', '__')}__")
    return task, model


def _continuations(arguments: Any) -> list[str] | None:
    if isinstance(arguments, dict):
        items = [arguments[k] for k in sorted(arguments, key=lambda k: int(re.sub(r"\D", "", k) or 0))]
    elif isinstance(arguments, list):
        items = arguments
    else:
        return None
    out = []
    for a in items:
        if isinstance(a, dict):
            out.append(coerce_text(a.get("arg_1")) or "")
        elif isinstance(a, (list, tuple)) and len(a) > 1:
            out.append(coerce_text(a[1]) or "")
        else:
            return None
    return out


def convert_row(r: dict, task: str, model: str) -> dict:
    """One harness sample row -> canonical fields (raises KeyError / ValueError for a bad row)."""
    if "doc_id" not in r or "filtered_resps" not in r:
        raise KeyError("missing key(s): " + ", ".join(k for k in ("doc_id", "filtered_resps") if k not in r))
    metric = next((k for k in METRICS if r.get(k) is not None), None)
    if metric is None:
        raise KeyError(f"no metric column with a value (expected one of {', '.join(METRICS)})")
    score = float(r[metric])
    filtered = r["filtered_resps"]
    lls = choice_scores(filtered)
    confidence = None
    if lls is not None:
        scores = lls
        if metric == "acc_norm":
            conts = _continuations(r.get("arguments"))
            if conts is None or len(conts) != len(lls):
                raise ValueError("acc_norm row without one continuation per choice in arguments")
            lengths = [max(len(c[1:] if c.startswith(" ") else c), 1) for c in conts]
            scores = [v / n for v, n in zip(lls, lengths)]
        chosen, confidence = softmax_choice(scores)
        response: str | None = json.dumps(lls)
        answer: str | None = str(chosen)
    else:
        first = filtered[0] if isinstance(filtered, list) and filtered else filtered
        response = coerce_text(first)
        answer = response
    doc = r.get("doc") if isinstance(r.get("doc"), dict) else {}
    prompt = coerce_text(doc.get("question") or doc.get("query") or doc.get("problem") or doc.get("input")
                         or doc.get("prompt"))
    return dict(sample_id=r["doc_id"], model=model, grader=f"open_llm_leaderboard/{task}/{metric}", prompt=prompt,
                response=response, extracted_answer=answer, gold=coerce_text(r.get("target")),
                original_score=score, outcome="correct" if score >= 1.0 else "wrong", confidence=confidence)


def _rows(dataset: Iterable[dict], label: str) -> Iterator[Item]:
    for i, row in enumerate(dataset):
        yield Item(f"{label}[{i}]", record=row, raw=json.dumps(row, default=str)[:2000])


def build_batch(dataset: Iterable[dict], *, source_id: str, task: str, model: str, label: str,
                provenance) -> SourceBatch:
    b = RecordBuilder(source_id, benchmark=task, model=model)
    consume(b, _rows(dataset, label), lambda r: convert_row(r, task, model))
    return b.finish(provenance)


def load_parquet(path: Path):
    """The file as a ``datasets.Dataset`` (offline; a private cache directory removed afterwards)."""
    import datasets

    cache = tempfile.mkdtemp(prefix="bench-audit-hf-")
    try:
        ds = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=cache)
        return ds.to_list()
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def load_from_hub(repo_id: str, config: str, split: str = "latest", revision: str | None = None) -> SourceBatch:
    """Read one details config from the Hugging Face Hub (``open-llm-leaderboard/<org>__<model>-details``)."""
    import datasets

    ds = datasets.load_dataset(repo_id, name=config, split=split, revision=revision)  # never trust_remote_code
    m = _CONFIG.match(config)
    task = m.group("task") if m else config
    model = repo_id.split("/", 1)[-1].removesuffix("-details").replace("__", "/", 1)
    from audit.records import Provenance

    prov = Provenance(source_id=f"open_llm_leaderboard:{repo_id}/{config}/{split}", format="open_llm_leaderboard",
                      uri=f"https://huggingface.co/datasets/{repo_id}", sha256=getattr(ds, "_fingerprint", "") or "",
                      revision=revision)
    return build_batch(ds, source_id=prov.source_id, task=task, model=model, label=f"{config}/{split}",
                       provenance=prov)


class OpenLlmLeaderboard:
    name = "open_llm_leaderboard"
    description = "Open LLM Leaderboard v2 details parquet (<org>__<model>-details: one config per task; MC log-likelihoods)"
    example = "<org>__<model>-details/<org>__<model>__leaderboard_bbh_navigate/latest/0000.parquet"

    def sniff(self, path: Path) -> bool:
        if not path.is_file() or path.suffix != ".parquet":
            return False
        cols = _columns(path)
        return {"doc_id", "filtered_resps", "resps", "arguments"} <= cols

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        task, model = task_and_model(path)
        source_id = ctx.source_id(self.name, path)
        prov = ctx.provenance(self.name, path, source_id)
        if model is None:
            model = "unknown-model"
        try:
            rows = load_parquet(path)
        except Exception as e:  # noqa: BLE001 - datasets / arrow raise many types for a damaged file
            raise ValueError(f"{path}: cannot load as a details parquet: {type(e).__name__}: {e}") from None
        yield build_batch(rows, source_id=source_id, task=task, model=model, label=path.name,
                          provenance=prov)


register(OpenLlmLeaderboard())
