"""IFEval ``eval_results_strict.jsonl`` / ``eval_results_loose.jsonl`` (google-research instruction_following_eval,
and forks such as M-IFEval), read with the input data that names each prompt.

An eval_results line has ``prompt``, ``response``, ``instruction_id_list``, ``follow_instruction_list`` (one bool per
instruction) and ``follow_all_instructions`` (the prompt-level verdict). It carries no id: the sample id is the
``key`` of the input-data line with the same prompt, from the first of

    <folder>/../data/<lang>_input_data.jsonl     (M-IFEval: evaluations/<lang>_input_response_data_<MODEL>/)
    <folder>/input_data.jsonl, <folder>/../input_data.jsonl, <folder>/../data/input_data.jsonl

A line whose prompt is not in the input data is quarantined. Without any input data the id is
``sha256:<first 16 hex of the prompt's hash>`` (stable across models and files).

Outcome: prompt level, as IFEval's headline "prompt-level accuracy": ``follow_all_instructions`` true -> correct,
else wrong; ``original_score`` 1 / 0. One grader per checking mode: ``ifeval/strict`` and ``ifeval/loose``
(two sources, same responses). ``source_label`` records ``k/n instructions followed``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Iterator

from audit.records import RecordBuilder, SourceBatch, coerce_text, require
from audit.sources import ReadContext, head, register
from audit.sources.jsonio import consume, iter_jsonl

_FILE = re.compile(r"^eval_results_(?P<mode>strict|loose)\.jsonl$")
_MIFEVAL_DIR = re.compile(r"^(?P<lang>[a-z]{2})_input_response_data_(?P<model>.+)$")


def input_data_for(folder: Path, lang: str | None) -> Path | None:
    candidates = []
    if lang:
        candidates.append(folder.parent.parent / "data" / f"{lang}_input_data.jsonl")
    candidates += [folder / "input_data.jsonl", folder.parent / "input_data.jsonl",
                   folder.parent / "data" / "input_data.jsonl"]
    return next((c for c in candidates if c.is_file()), None)


def keys_by_prompt(path: Path) -> tuple[dict[str, str], list[str]]:
    keys: dict[str, str] = {}
    problems: list[str] = []
    for item in iter_jsonl(path):
        r = item.record
        if item.error or not isinstance(r, dict) or "prompt" not in r or "key" not in r:
            problems.append(f"input data {item.locator}: {item.error or 'not an object with key and prompt'}")
            continue
        if r["prompt"] in keys:
            problems.append(f"input data {item.locator}: prompt repeated (key {r['key']}); first key kept")
            continue
        keys[r["prompt"]] = str(r["key"])
    return keys, problems


class IFEvalResults:
    name = "ifeval_results"
    description = "IFEval eval_results_{strict,loose}.jsonl + input_data.jsonl (prompt-level follow_all_instructions)"
    example = "../shared/data/ifeval_mifeval"

    def sniff(self, path: Path) -> bool:
        if not path.is_file() or not _FILE.match(path.name):
            return False
        first = head(path, 65536).split(b"\n", 1)[0]
        return b'"follow_all_instructions"' in first and b'"follow_instruction_list"' in first

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        mode = _FILE.match(path.name).group("mode")
        m = _MIFEVAL_DIR.match(path.parent.name)
        lang = m.group("lang") if m else None
        model = m.group("model").replace("__", "/") if m else path.parent.name
        benchmark = "ifeval" if lang in (None, "en") else f"m_ifeval_{lang}"
        inputs = input_data_for(path.parent, lang)
        keys, problems = keys_by_prompt(inputs) if inputs else ({}, [f"no input data found for {path}"])
        source_id = ctx.source_id(self.name, path)
        b = RecordBuilder(source_id, benchmark=benchmark, grader=f"ifeval/{mode}", model=model)

        def convert(r: dict) -> dict:
            require(r, "prompt", "response", "follow_all_instructions", "follow_instruction_list")
            verdict, checks = r["follow_all_instructions"], r["follow_instruction_list"]
            if not isinstance(verdict, bool):
                raise ValueError(f"follow_all_instructions is {verdict!r}, expected true or false")
            if not isinstance(checks, list) or not all(isinstance(c, bool) for c in checks):
                raise ValueError("follow_instruction_list is not a list of booleans")
            if verdict != all(checks):
                raise ValueError(f"follow_all_instructions {verdict} contradicts follow_instruction_list {checks}")
            prompt = r["prompt"]
            if not isinstance(prompt, str):
                raise ValueError("prompt is not text")
            if inputs is not None:
                if prompt not in keys:
                    raise KeyError(f"prompt not found in input data {inputs.name}")
                sample_id = keys[prompt]
            else:
                sample_id = "sha256:" + hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]
            return dict(
                sample_id=sample_id,
                prompt=prompt,
                response=coerce_text(r["response"]),
                gold=coerce_text(r.get("instruction_id_list")),
                original_score=1.0 if verdict else 0.0,
                source_label=f"{sum(checks)}/{len(checks)} instructions followed",
                outcome="correct" if verdict else "wrong",
            )

        consume(b, iter_jsonl(path), convert)
        batch = b.finish(ctx.provenance(self.name, path, source_id))
        batch.notes.extend(problems)
        yield batch


def _is_input_data(path: Path) -> bool:
    return path.suffix == ".jsonl" and path.name.endswith("input_data.jsonl")


register(IFEvalResults(), auxiliary=_is_input_data)
