"""ZeroEval result JSON (yuchenlin/ZeroEval, now WildEval/ZeroEval): ``result_dirs/<task>/<MODEL>.json``.

A JSON array, one object per problem: ``session_id``, ``id``, ``chat_history`` (the prompt, asking for a JSON reply
``{"reasoning": ..., "answer": ...}``), ``output`` (list with the raw reply), ``generator``, ``configs``, ``dataset``
(e.g. ``math-l5``) and the gold ``answer`` (with ``problem`` / ``question``). The file holds no verdict: ZeroEval
grades when it summarises (``result_dirs/<task>.summary.json``: Acc and "No answer" rates per model), so this
adapter applies ZeroEval's own math rule (``src/evaluation/math_eval.py``), re-implemented without ``eval``:

1. the answer is the ``answer`` field of the first complete ``{...}`` in the reply (parsed as JSON with newlines
   removed); failing that, the first ``"answer": "..."`` (or unquoted ``answer: x``) found by pattern; failing that,
   for Llama-3.1 models only, ``\\boxed{x}``. Nothing found: ``source_label = "no_answer"``, outcome wrong (the
   summary's "No answer", counted as wrong in its Acc; a format failure, not an abstention);
2. both answers are sanitised (``$`` and ``,`` dropped; a plain arithmetic fraction such as ``3/4`` becomes a float)
   and compared by their first number (``-?\\d+(\\.\\d+)?``) as floats: equal -> correct (``original_score`` 1).

Benchmark: the ``dataset`` field (``math-l5`` -> MATH level 5, ``gsm`` -> GSM8K, both graded by that rule in ZeroEval;
records of other datasets are quarantined as "grading rule not implemented"); grader ``zeroeval/<dataset>``;
model: the file name.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from pathlib import Path
from typing import Any, Iterator

from audit.records import RecordBuilder, SourceBatch, coerce_text, require
from audit.sources import ReadContext, head, register
from audit.sources.jsonio import consume, iter_json_array

_FIRST_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_BOXED = re.compile(r"\\boxed{([\w\d]+)}")
_BENCH = {"math-l5": "math_l5", "gsm": "gsm8k"}
# Datasets ZeroEval grades with the first-number rule (math_eval.py, gsm_eval.py). Others (crux, mmlu-redux,
# zebra-grid, ...) use other rules, not implemented here: their records are quarantined with that reason.
NUMERIC_DATASETS = frozenset(_BENCH)
NO_ANSWER = "no_answer"


def first_json_object(text: str) -> Any:
    """The first top-level ``{...}`` (by brace matching), parsed with newlines removed; None if it does not parse."""
    depth, start = 0, None
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                try:
                    return json.loads(text[start:i + 1].replace("\n", ""))
                except (json.JSONDecodeError, RecursionError):
                    return None
    return None


def answer_by_pattern(text: str) -> str | None:
    """ZeroEval's fallback: ``"answer": "..."`` (shortest, then across lines), else an unquoted value."""
    for pattern, flags in ((r'"answer"\s*:\s*"([^"]*?)"', 0), (r'"answer"\s*:\s*"(.*?)"', re.DOTALL)):
        m = re.search(pattern, text, flags)
        if m:
            return m.group(1)
    for pattern in (r'"answer"\s*:\s*([^,\s]*)', r"answer\s*:\s*([^,\s]*)"):
        m = re.search(pattern, text)
        if m:
            return m.group(1)
    return None


def extract_answer(model: str, reply: str) -> str | None:
    parsed = first_json_object(reply)
    if isinstance(parsed, dict) and "answer" in parsed:
        return _as_text(parsed["answer"])
    found = answer_by_pattern(reply)
    if found is not None:
        return found
    if "Llama-3.1" in model and "boxed" in reply:
        m = _BOXED.search(reply)
        if m:
            return m.group(1)
    return None


def _as_text(value: Any) -> str:
    # ZeroEval applies str() to the parsed value: Python's spelling for numbers, lists and null.
    return str(value)


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _arith(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _arith(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _arith(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_arith(node.left), _arith(node.right))
    raise ValueError("not plain arithmetic")


def sanitise(answer: str) -> str:
    """Drop ``$`` and ``,``; a plain arithmetic expression with ``/`` becomes its float value (never ``eval``)."""
    answer = answer.replace("$", "").strip().replace(",", "")
    if "/" in answer and len(answer) <= 200:
        try:
            answer = str(float(_arith(ast.parse(answer, mode="eval"))))
        except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, TypeError, RecursionError, MemoryError):
            pass
    return answer


def is_match(answer: str, gold: str) -> bool:
    a, g = _FIRST_NUMBER.search(sanitise(answer)), _FIRST_NUMBER.search(sanitise(gold))
    return bool(a and g) and float(a.group()) == float(g.group())


class ZeroEvalResults:
    name = "zeroeval"
    description = "ZeroEval result JSON (result_dirs/<task>/<MODEL>.json; answer parsed from a JSON reply, ZeroEval math rule)"
    example = "../shared/data/zeroeval"

    def sniff(self, path: Path) -> bool:
        if not path.is_file() or path.suffix != ".json":
            return False
        h = head(path, 65536)
        return (h.lstrip().startswith(b"[") and b'"session_id"' in h and b'"chat_history"' in h
                and b'"output"' in h and b'"generator"' in h)

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        model = path.stem
        source_id = ctx.source_id(self.name, path)
        b = RecordBuilder(source_id, model=model)

        def convert(r: dict) -> dict:
            require(r, "output", "answer")
            sample_id = r.get("id", r.get("session_id"))
            if sample_id is None:
                raise KeyError("missing key(s): id or session_id")
            dataset = str(r.get("dataset") or path.parent.name)
            if dataset not in NUMERIC_DATASETS:
                raise ValueError(f"ZeroEval dataset {dataset!r}: its grading rule is not implemented "
                                 f"(supported: {', '.join(sorted(NUMERIC_DATASETS))})")
            output = r["output"]
            if isinstance(output, list):
                reply = output[0] if output else ""
            else:
                reply = output
            if reply is None:
                reply = ""
            if not isinstance(reply, str):
                raise ValueError(f"output is {type(reply).__name__}, expected text")
            gold = r["answer"]
            if not isinstance(gold, (str, int, float)) or isinstance(gold, bool):
                raise ValueError(f"gold answer is {type(gold).__name__}")
            gold = str(gold).replace("#", "").strip()
            answer = extract_answer(model, reply)
            if answer is None:
                score, label = 0.0, NO_ANSWER
            else:
                score, label = (1.0 if is_match(answer, gold) else 0.0), None
            history = r.get("chat_history")
            return dict(
                sample_id=sample_id,
                benchmark=_BENCH.get(dataset, dataset),
                grader=f"zeroeval/{dataset}",
                prompt=coerce_text(r.get("problem") or r.get("question") or history),
                response=reply,
                extracted_answer=answer,
                gold=gold,
                original_score=score,
                source_label=label,
                outcome="correct" if score == 1.0 else "wrong",
            )

        consume(b, iter_json_array(path), convert)
        yield b.finish(ctx.provenance(self.name, path, source_id))


def _is_summary(path: Path) -> bool:
    return path.name.endswith(".summary.json") or path.name.endswith(".summary.md")


register(ZeroEvalResults(), auxiliary=_is_summary)
