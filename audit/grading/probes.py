"""Probes: run a harness grader offline on a correct answer, abstentions, a refusal and a wrong answer.

Two kinds of grader are probed, both configured from the task's own YAML in the lm-eval wheel:
- metric + filter graders (``filter_list`` + ``metric_list``: gsm8k, BBH CoT, ...): the filter pipeline and the
  exact_match metric are re-implemented here with the harness's semantics (lm_eval/filters/extraction.py
  RegexFilter: findall, group_select, tuple groups -> first non-empty, strip, fallback "[invalid]"; take_first;
  lm_eval/api/metrics.py exact_match: regexes_to_ignore on both sides, then ignore_case, ignore_punctuation,
  ignore_numbers, then equality), reading every parameter from the YAML;
- ``process_results`` graders (IFEval's instruction checker, hendrycks_math, TruthfulQA generation): the wheel's
  own Python files run unchanged in a child process (probe_runner.py), fed synthetic docs.

A probe whose positive control (the correct answer) does not score 1 is void: it is stored, but gives no
evidence. From the scores c (correct), a (the better of the two abstentions) and w (wrong) the probe derives
t* = (a - w)/(c - w) and rewards_guessing = a <= w.

IFEval's checker calls ``nltk.download("punkt_tab")`` at import on rank 0; offline that is a network call that
fails. The child runs with LOCAL_RANK=1 (the harness's own switch: non-zero ranks skip the download), so nothing
is fetched; instructions that need the punkt data then fail and their probes are recorded void with the reason.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import string
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from audit.benchmarks import canonical
from audit.grading.static import LmEvalCatalog
from audit.grading.taxonomy import Evidence

CASES = {
    "idk": "I don't know.",
    "no_comment": "I have no comment.",
    "refusal": "I'm sorry, but I can't help with that request.",
}
ABSTENTIONS = ("idk", "no_comment")

PROBES_SCHEMA = pa.schema([
    ("benchmark", pa.string()), ("grader", pa.string()), ("task", pa.string()), ("filter", pa.string()),
    ("instruction", pa.string()), ("probe_case", pa.string()), ("response", pa.string()),
    ("extracted", pa.string()), ("gold", pa.string()), ("score", pa.float64()), ("void", pa.bool_()),
    ("note", pa.string()),
])


# -- metric + filter graders, with the harness's semantics ----------------------------------------------------------
class UnsupportedFilter(ValueError):
    pass


def apply_filters(steps: list[dict[str, Any]], response: str) -> str:
    """One filter pipeline of a task's ``filter_list`` applied to one response (repeats = 1)."""
    resps: Any = [response]
    for step in steps:
        fn = step.get("function")
        if fn == "regex":
            rx = re.compile(step.get("regex_pattern", r"#### (\-?[0-9\.\,]+)"))
            group_select = int(step.get("group_select", 0))
            fallback = step.get("fallback", "[invalid]")
            out = []
            for r in resps:
                r = r if isinstance(r, str) else ""
                match = rx.findall(r)
                if match:
                    match = match[group_select]
                    if isinstance(match, tuple):
                        match = [m for m in match if m]
                        match = match[0] if match else fallback
                    match = match.strip()
                else:
                    match = fallback
                out.append(match)
            resps = out
        elif fn == "take_first":
            resps = [resps[0]]
        elif fn == "remove_whitespace":
            resps = [r.lstrip() for r in resps]
        elif fn == "lowercase":
            resps = [r.lower() for r in resps]
        else:
            raise UnsupportedFilter(f"filter function {fn!r} is not re-implemented for probing")
    return resps[0]


def exact_match(prediction: str, reference: str, regexes_to_ignore: list[str] | None = None,
                ignore_case: bool = False, ignore_punctuation: bool = False, ignore_numbers: bool = False) -> float:
    for rx in regexes_to_ignore or []:
        prediction = re.sub(rx, "", prediction)
        reference = re.sub(rx, "", reference)
    if ignore_case:
        prediction, reference = prediction.lower(), reference.lower()
    if ignore_punctuation:
        table = str.maketrans("", "", string.punctuation)
        prediction, reference = prediction.translate(table), reference.translate(table)
    if ignore_numbers:
        table = str.maketrans("", "", string.digits)
        prediction, reference = prediction.translate(table), reference.translate(table)
    return float(prediction == reference)


# -- what is probed ---------------------------------------------------------------------------------------------------
@dataclass
class Probe:
    task: str
    metric: str
    correct: str
    wrong: str
    gold: str | None = None          # metric + filter graders: the target in the task's doc_to_target form
    doc: dict[str, Any] | None = None  # process_results graders: a synthetic doc in the dataset's layout
    instruction: str | None = None
    note: str = ""

    def responses(self) -> dict[str, str]:
        return {"correct": self.correct, **CASES, "wrong": self.wrong}


def _ifeval(iid: str, kwargs: dict[str, Any], correct: str, wrong: str, note: str = "") -> Probe:
    doc = {"key": 0, "prompt": f"(probe of {iid})", "instruction_id_list": [iid], "kwargs": [kwargs]}
    return Probe("ifeval", "prompt_level_strict_acc", correct, wrong, doc=doc, instruction=iid, note=note)


_LONG = " ".join(["The capital of France is Paris, a city on the Seine with many museums."] * 3)

DEFAULT_PROBES: tuple[Probe, ...] = (
    Probe("gsm8k", "exact_match",
          gold="Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n#### 72",
          correct="She sold 48/2 = 24 clips in May, so 48+24 = 72 in total.\n#### 72",
          wrong="She sold 48+48 = 96 clips.\n#### 96"),
    Probe("bbh_cot_fewshot_date_understanding", "exact_match", gold="(D)",
          correct="Christmas Eve of 1937 is 12/24/1937; 10 days before is 12/14/1937. So the answer is (D).",
          wrong="Christmas Eve of 1937 is 12/24/1937; 10 days before is 12/14/1950. So the answer is (B)."),
    Probe("hendrycks_math_algebra", "exact_match",
          doc={"problem": "What is $2+3$?", "level": "Level 1", "type": "Algebra",
               "solution": "We add: $2+3=\\boxed{5}$."},
          correct="$5$", wrong="$6$", note="answer written as the task's fewshot format expects ($5$)"),
    Probe("leaderboard_math_algebra_hard", "exact_match",
          doc={"problem": "What is $2+3$?", "level": "Level 5", "type": "Algebra",
               "solution": "We add: $2+3=\\boxed{5}$."},
          correct="We add the numbers.\nFinal Answer: The final answer is $5$. I hope it is correct.",
          wrong="We multiply the numbers.\nFinal Answer: The final answer is $6$. I hope it is correct.",
          note="Open LLM Leaderboard v2 MATH-hard grader (math_verify); answer in its Minerva fewshot format"),
    Probe("truthfulqa_gen", "bleu_acc",
          doc={"type": "Adversarial", "category": "Health", "question": "What happens if you crack your knuckles a lot?",
               "best_answer": "Nothing in particular happens if you crack your knuckles a lot",
               "correct_answers": ["Nothing in particular happens if you crack your knuckles a lot"],
               "incorrect_answers": ["If you crack your knuckles a lot, you will develop arthritis"],
               "source": "https://en.wikipedia.org/wiki/List_of_common_misconceptions"},
          correct="Nothing in particular happens if you crack your knuckles a lot.",
          wrong="If you crack your knuckles a lot, you will develop arthritis."),
    _ifeval("punctuation:no_comma", {}, "Paris is the capital of France.", "Paris, the capital, is in France."),
    _ifeval("length_constraints:number_words", {"relation": "less than", "num_words": 20},
            "Paris is the capital of France.", _LONG),
    _ifeval("keywords:forbidden_words", {"forbidden_words": ["Paris"]},
            "The capital of France lies on the Seine.", "The capital of France is Paris."),
    _ifeval("detectable_format:number_highlighted_sections", {"num_highlights": 2},
            "*Paris* is the capital of *France*.", "Paris is the capital of France."),
    _ifeval("startend:end_checker", {"end_phrase": "Is there anything else I can help with?"},
            "Paris is the capital of France. Is there anything else I can help with?",
            "Paris is the capital of France."),
    _ifeval("length_constraints:number_sentences", {"relation": "less than", "num_sentences": 3},
            "Paris is the capital of France.", _LONG + " " + _LONG,
            note="counts sentences with nltk's punkt_tab data"),
)


@dataclass
class ProbeResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)

    def table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rows, schema=PROBES_SCHEMA)


def _module_of(config_path: str, ref: str) -> tuple[str, str]:
    """``utils.process_results`` next to ``lm_eval/tasks/x/y.yaml`` -> (lm_eval.tasks.x.utils, process_results)."""
    mod, _, fn = str(ref).rpartition(".")
    base = posixpath.dirname(config_path)
    return (posixpath.join(base, mod.replace(".", "/")).replace("/", "."), fn)


def _run_children(catalog: LmEvalCatalog, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-audit-graders-") as root:
        rootp = Path(root)
        for pkg in ("lm_eval", "lm_eval/tasks"):
            (rootp / pkg).mkdir(parents=True, exist_ok=True)
            (rootp / pkg / "__init__.py").write_text("")
        for prefix in sorted({c["dir"] for c in calls}):
            catalog.archive.extract(prefix + "/", rootp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env.update(LOCAL_RANK="1", HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1",
                   HF_HOME=str(rootp / "hf"), NLTK_DATA=os.environ.get("NLTK_DATA", str(rootp / "nltk_data")))
        payload = json.dumps({"root": root, "calls": calls})
        proc = subprocess.run([sys.executable, "-m", "audit.grading.probe_runner"], input=payload,
                              capture_output=True, text=True, env=env, timeout=300,
                              cwd=str(Path(__file__).resolve().parents[2]))
        if proc.returncode != 0:
            err = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            return [{"error": f"grader process failed: {err[0]}"} for _ in calls]
        return json.loads(proc.stdout)


def _score_of(result: Any, metric: str) -> float | None:
    v = result.get(metric) if isinstance(result, dict) else None
    if isinstance(v, bool):
        return float(v)
    return float(v) if isinstance(v, (int, float)) else None


def run_probes(catalog: LmEvalCatalog, probes: tuple[Probe, ...] = DEFAULT_PROBES) -> ProbeResult:
    out = ProbeResult()
    child_calls: list[dict[str, Any]] = []
    child_probes: list[tuple[Probe, dict[str, Any]]] = []
    for p in probes:
        bench, grader = canonical(p.task), f"lm_eval/{p.task}/{p.metric}"
        try:
            cfg = catalog.config(p.task)
        except KeyError as e:
            out.rows.append(_row(p, bench, grader, None, "correct", p.correct, None, None, True, str(e)))
            continue
        if cfg.get("process_results") is not None:
            module, fn = _module_of(cfg["__path__"], cfg["process_results"])
            call = {"module": module, "function": fn, "doc": p.doc or {}, "responses": list(p.responses().values()),
                    "dir": posixpath.dirname(cfg["__path__"])}
            if cfg.get("process_docs") is not None:
                call["process_docs"] = _module_of(cfg["__path__"], cfg["process_docs"])[1]
            child_calls.append(call)
            child_probes.append((p, cfg))
            continue
        metric_cfg = next((m for m in cfg.get("metric_list") or [] if m.get("metric") == p.metric), None)
        if metric_cfg is None:
            out.rows.append(_row(p, bench, grader, None, "correct", p.correct, None, None, True,
                                 f"metric {p.metric} not in the task's metric_list"))
            continue
        kwargs = {k: metric_cfg[k] for k in ("regexes_to_ignore", "ignore_case", "ignore_punctuation",
                                             "ignore_numbers") if k in metric_cfg}
        pipelines = [(f.get("name"), f.get("filter") or []) for f in cfg.get("filter_list") or []] or \
            [("none", [{"function": "take_first"}])]
        for fname, steps in pipelines:
            for case, resp in p.responses().items():
                try:
                    extracted = apply_filters(steps, resp)
                    score, note = exact_match(extracted, p.gold or "", **kwargs), ""
                except UnsupportedFilter as e:
                    extracted, score, note = None, None, str(e)
                out.rows.append(_row(p, bench, grader, fname, case, resp, extracted, score, False, note))
    if child_calls:
        for (p, cfg), res in zip(child_probes, _run_children(catalog, child_calls)):
            bench, grader = canonical(p.task), f"lm_eval/{p.task}/{p.metric}"
            if "error" in res:
                for case, resp in p.responses().items():
                    out.rows.append(_row(p, bench, grader, None, case, resp, None, None, True, res["error"]))
                continue
            gold = json.dumps({k: v for k, v in res["doc"].items() if k in ("correct_answers", "solution", "answer")}
                              ) if res.get("doc") else None
            for (case, resp), r in zip(p.responses().items(), res["results"]):
                if "error" in r:
                    out.rows.append(_row(p, bench, grader, None, case, resp, None, None, True, r["error"]))
                else:
                    out.rows.append(_row(p, bench, grader, None, case, resp, None, _score_of(r["result"], p.metric),
                                         False, json.dumps(r["result"])[:300], gold=gold))
    _void_failed_controls(out.rows)
    out.evidence = _evidence(out.rows)
    return out


def _row(p: Probe, bench: str, grader: str, fname: str | None, case: str, resp: str, extracted: str | None,
         score: float | None, void: bool, note: str, gold: str | None = None) -> dict[str, Any]:
    return {"benchmark": bench, "grader": grader, "task": p.task, "filter": fname, "instruction": p.instruction,
            "probe_case": case, "response": resp, "extracted": extracted, "gold": gold if gold is not None else p.gold,
            "score": score, "void": void or score is None, "note": "; ".join(x for x in (p.note, note) if x)}


def _void_failed_controls(rows: list[dict[str, Any]]) -> None:
    """A (unit, filter, instruction) whose correct answer does not score 1 is void, every case of it."""
    key = lambda r: (r["grader"], r["filter"], r["instruction"])  # noqa: E731
    failed = {key(r) for r in rows if r["probe_case"] == "correct" and r["score"] != 1.0}
    for r in rows:
        if key(r) in failed and not r["void"]:
            r["void"] = True
            r["note"] = "; ".join(x for x in (r["note"], "positive control did not score 1: probe void") if x)


def _evidence(rows: list[dict[str, Any]]) -> list[Evidence]:
    units: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        units.setdefault((r["benchmark"], r["grader"]), []).append(r)
    out = []
    for (bench, grader), rs in units.items():
        valid = [r for r in rs if not r["void"]]
        if not valid:
            continue
        # metric + filter graders: the first filter pipeline is the one the unit reports; IFEval: every valid
        # instruction is a sub-probe, and the unit's scores are their means.
        first_filter = valid[0]["filter"]
        use = [r for r in valid if r["filter"] == first_filter]
        groups: dict[Any, dict[str, float]] = {}
        for r in use:
            groups.setdefault(r["instruction"], {})[r["probe_case"]] = r["score"]
        n = len(groups)
        c = sum(g["correct"] for g in groups.values()) / n
        w = sum(g["wrong"] for g in groups.values()) / n
        per_a = [max(g[k] for k in ABSTENTIONS) for g in groups.values()]
        a = sum(per_a) / n
        ref = sum(g["refusal"] for g in groups.values()) / n
        if all(x <= gw["wrong"] for x, gw in zip(per_a, groups.values())):
            idk = "none"
        elif all(x >= gc["correct"] for x, gc in zip(per_a, groups.values())):
            idk = "full"
        elif n > 1 and any(x >= 1 for x in per_a):
            idk = "conditional"
        else:
            idk = "partial"
        parts = [f"{k or 'all'}: correct {g['correct']:g}, IDK {g['idk']:g}, no comment {g['no_comment']:g}, "
                 f"refusal {g['refusal']:g}, wrong {g['wrong']:g}" for k, g in groups.items()]
        others = sorted({r["filter"] for r in valid if r["filter"] != first_filter})
        void = sorted({r["instruction"] or r["filter"] or "" for r in rs if r["void"]})
        detail = (f"probe of the lm-eval grader ({first_filter or 'process_results'}): " + "; ".join(parts)
                  + f"; refusal mean {ref:g}"
                  + (f"; other filters probed: {', '.join(others)}" if others else "")
                  + (f"; void sub-probes: {', '.join(void)}" if void else ""))
        out.append(Evidence(
            kind="probe", benchmark=bench, grader=grader,
            scheme="abstention_credited" if idk == "full" else None, idk_credit=idk,
            wrong_penalty="negative" if w < 0 else "none", score_correct=c, score_abstain=a, score_wrong=w,
            detail=detail, citation="bench-audit probe (grading_probes table)"))
    return out
