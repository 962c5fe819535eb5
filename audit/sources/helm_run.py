"""HELM raw run folders (``benchmark_output/runs/<suite>/<run name>/``).

A run folder holds ``run_spec.json`` (``name`` such as ``mmlu:subject=anatomy,method=multiple_choice_joint,
model=openai_gpt2``, ``adapter_spec`` with ``model`` and ``method``, ``groups``), ``scenario_state.json``
(``request_states``: each with ``instance`` {``id``, ``input.text``, ``references`` [{``output.text``, ``tags``}],
``perturbation``}, ``train_trial_index``, ``output_mapping`` for joint multiple choice, ``request`` and ``result``
{``completions`` [{``text``, ``logprob``}]}) and ``per_instance_stats.json`` (a list of {``instance_id``,
``perturbation``, ``train_trial_index``, ``stats`` [{``name`` {``name``, ``split``, ``perturbation``}, ``count``,
``sum``, ``mean``, ...}]}).

One canonical record per ``per_instance_stats`` entry (instance x trial x perturbation), joined to its request
state for the prompt and the completion. The grade is the first of ``MAIN_METRICS`` the entry has (for a perturbed
instance, the stat carrying that same perturbation): mean >= 1 is correct. Joint multiple-choice answers (a letter)
are mapped to the choice text through ``output_mapping``. Separate multiple choice
(``multiple_choice_separate_original`` / ``_calibrated``: one scoring request per choice, each with a
``reference_index``, no generated text) takes HELM's own prediction: the reference at the entry's
``predicted_index`` stat, with ``max_prob`` as the confidence. Other files in the folder (stats.json, instances.json, display_*.json ...) are summaries of the
same run and are not read.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

from audit.records import RecordBuilder, SourceBatch, coerce_text
from audit.sources import ReadContext, register
from audit.sources.jsonio import Item, consume, load_json

MAIN_METRICS = ("exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match",
                "exact_match_indicator", "final_number_exact_match", "math_equiv", "math_equiv_chain_of_thought",
                "equivalent", "equivalent_cot", "ifeval_strict_accuracy", "chain_of_thought_correctness",
                "pass", "code_eval_acc")


def _key(instance_id: Any, trial: Any, perturbation: Any) -> tuple[str, int, str]:
    pname = perturbation.get("name") if isinstance(perturbation, dict) else None
    return str(instance_id), int(trial or 0), pname or ""


def sample_id(instance_id: str, trial: int, pert: str) -> str:
    return instance_id + (f"/{pert}" if pert else "") + (f"#trial{trial}" if trial else "")


def benchmark_of(run_name: str, groups: list | None) -> str:
    return run_name.split(":", 1)[0] if run_name else (groups[0] if groups else "helm")


class HelmRun:
    name = "helm_run"
    description = "HELM raw run folder (run_spec.json + scenario_state.json + per_instance_stats.json)"
    example = "benchmark_output/runs/v1.0/mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt2"

    def sniff(self, path: Path) -> bool:
        return path.is_dir() and (path / "run_spec.json").is_file() and (path / "per_instance_stats.json").is_file()

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        spec, err = load_json(path / "run_spec.json")
        if err or not isinstance(spec, dict):
            raise ValueError(f"{path / 'run_spec.json'}: {err or 'expected an object'}")
        adapter = spec.get("adapter_spec") or {}
        model = adapter.get("model") or adapter.get("model_deployment")
        run_name = str(spec.get("name") or path.name)
        bench = benchmark_of(run_name, spec.get("groups"))
        source_id = ctx.source_id(self.name, path)
        b = RecordBuilder(source_id, benchmark=bench, model=model)

        states: dict[tuple[str, int, str], dict] = {}
        ss_path = path / "scenario_state.json"
        if ss_path.is_file():
            ss, err = load_json(ss_path)
            if err or not isinstance(ss, dict):
                raise ValueError(f"{ss_path}: {err or 'expected an object'}")
            for rs in ss.get("request_states") or []:
                inst = (rs or {}).get("instance") or {}
                if "id" not in inst:
                    continue
                k = _key(inst["id"], rs.get("train_trial_index"), inst.get("perturbation"))
                # multiple_choice_separate_* has one request per choice: keep the first (the original) one
                if k not in states or rs.get("request_mode") in (None, "original"):
                    states.setdefault(k, rs)

        stats, err = load_json(path / "per_instance_stats.json")
        if err:
            items: Any = [Item("per_instance_stats.json", error=err)]
        elif not isinstance(stats, list):
            items = [Item("per_instance_stats.json", error="expected a JSON array at top level")]
        else:
            items = (Item(f"per_instance_stats.json[{i}]", record=r, raw=r) for i, r in enumerate(stats))

        def convert(r: dict) -> dict:
            if "instance_id" not in r or not isinstance(r.get("stats"), list):
                raise KeyError("missing key(s): instance_id / stats")
            # an unperturbed instance's stats carry no perturbation; a perturbed one's carry the same perturbation
            own = (r.get("perturbation") or {}).get("name") if isinstance(r.get("perturbation"), dict) else None
            by_name = {}
            for s in r["stats"]:
                n = (s or {}).get("name") or {}
                if not isinstance(n, dict) or n.get("name") in by_name:
                    continue
                p = n.get("perturbation")
                pname = p.get("name") if isinstance(p, dict) else None
                if pname == own:
                    by_name[n.get("name")] = s
            metric = next((m for m in MAIN_METRICS if m in by_name), None)
            if metric is None:
                raise KeyError(f"no main metric among the stats (expected one of {', '.join(MAIN_METRICS[:4])}, ...)")
            st = by_name[metric]
            mean = _stat_value(st)
            if mean is None:
                raise ValueError(f"stat {metric} has no value")
            score = float(mean)
            k = _key(r["instance_id"], r.get("train_trial_index"), r.get("perturbation"))
            rs = states.get(k) or {}
            inst = rs.get("instance") or {}
            refs = inst.get("references") or []
            confidence = None
            chosen = _predicted_reference(rs, refs, by_name)
            if chosen is not None:
                # multiple_choice_separate_*: one scoring request per choice and no generated text; HELM's own
                # choice is the reference it predicted, with its softmax probability (stats predicted_index and
                # max_prob). The first request's echo (the prompt with choice A) is not the model's answer.
                text = answer = chosen
                confidence = _stat_mean(by_name.get("max_prob"))
            else:
                completions = ((rs.get("result") or {}).get("completions")) or []
                text = (coerce_text(completions[0].get("text"))
                        if completions and isinstance(completions[0], dict) else None)
                mapping = rs.get("output_mapping") or {}
                answer = mapping.get(text.strip(), text) if text is not None and mapping else text
            gold = coerce_text([((ref.get("output") or {}).get("text")) for ref in refs
                                if "correct" in (ref.get("tags") or [])]) or None
            prompt = coerce_text((inst.get("input") or {}).get("text"))
            return dict(sample_id=sample_id(*k), grader=f"helm/{metric}", prompt=prompt, response=text,
                        extracted_answer=answer, gold=gold, original_score=score, source_label=k[2] or None,
                        outcome="correct" if score >= 1.0 else "wrong", confidence=confidence)

        consume(b, items, convert)
        yield b.finish(ctx.provenance(self.name, path, source_id))


def _stat_value(st: dict) -> Any:
    """A stat's mean, or sum / count where the entry leaves the mean out; None when it has neither."""
    mean = st.get("mean")
    if mean is None and st.get("count"):
        mean = float(st["sum"]) / float(st["count"])
    return mean


def _stat_mean(st: Any) -> float | None:
    """``_stat_value`` of an optional stat, when it is a finite number."""
    mean = _stat_value(st) if isinstance(st, dict) else None
    return float(mean) if isinstance(mean, (int, float)) and math.isfinite(mean) else None


def _predicted_reference(rs: dict, refs: list, by_name: dict) -> str | None:
    """The text of the reference HELM predicted, for a separate-request multiple-choice run (the request states
    carry a reference_index, and the instance's stats a predicted_index); None for any other run."""
    if rs.get("reference_index") is None:
        return None
    idx = _stat_mean(by_name.get("predicted_index"))
    if idx is None or idx != int(idx) or not 0 <= int(idx) < len(refs) or not isinstance(refs[int(idx)], dict):
        return None
    return coerce_text((refs[int(idx)].get("output") or {}).get("text"))


register(HelmRun())
