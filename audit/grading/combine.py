"""Combine evidence for one (benchmark, grader) into a classification, keeping every disagreement."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from audit.grading.taxonomy import (
    BINARY_SCHEMES, EVIDENCE_KINDS, Classification, Evidence, implied_threshold, rewards_guessing,
)

_COMPARED = ("scheme", "idk_credit", "wrong_penalty")


def classify_unit(evidence: list[Evidence]) -> Classification:
    """Decide from the strongest evidence (probe > curated > static > empirical, then curated evidence that only
    describes the benchmark's reference grader) field by field; every other piece of evidence that states a
    different value is listed in ``conflicts``."""
    if not evidence:
        raise ValueError("no evidence to classify")
    ranked = sorted(evidence, key=lambda e: EVIDENCE_KINDS.index(e.kind) if e.specific else len(EVIDENCE_KINDS))
    bench, grader = ranked[0].benchmark, ranked[0].grader

    def pick(attr: str):
        for e in ranked:
            v = getattr(e, attr)
            if v is not None:
                return v, e
        return None, None

    scheme, _ = pick("scheme")
    idk, _ = pick("idk_credit")
    pen, _ = pick("wrong_penalty")
    kind, _ = pick("grader_kind")
    binary, _ = pick("binary_grading")
    scored = next((e for e in ranked if None not in (e.score_correct, e.score_abstain, e.score_wrong)), None)
    c, a, w = (scored.score_correct, scored.score_abstain, scored.score_wrong) if scored else (None, None, None)
    scheme = scheme or "unknown"
    idk = idk or "unknown"
    if binary is None and scheme != "unknown":
        binary = scheme in BINARY_SCHEMES
    conflicts = []
    decided = {"scheme": scheme, "idk_credit": idk, "wrong_penalty": pen or "none"}
    for e in ranked:
        for attr in _COMPARED:
            v = getattr(e, attr)
            if v is not None and v != decided[attr]:
                conflicts.append({"field": attr, "decided": decided[attr], "evidence_kind": e.kind, "says": v,
                                  "detail": e.detail, "citation": e.citation})
    t_star = implied_threshold(c, a, w)
    if t_star is None and idk == "none" and scheme in BINARY_SCHEMES:
        t_star = 0.0
    return Classification(
        benchmark=bench, grader=grader, scheme=scheme, idk_credit=idk, wrong_penalty=pen or "none",
        grader_kind=kind, binary_grading=binary, implied_t=t_star,
        rewards_guessing=rewards_guessing(a, w, idk) if scored or idk in ("chance", "not_expressible") else
        (True if idk == "none" and binary else None),
        evidence_kinds=sorted({e.kind for e in ranked}, key=EVIDENCE_KINDS.index),
        conflicts=conflicts,
    )


def classify_all(evidence: Iterable[Evidence]) -> list[Classification]:
    units: dict[tuple[str, str], list[Evidence]] = defaultdict(list)
    for e in evidence:
        units[(e.benchmark, e.grader)].append(e)
    return [classify_unit(units[k]) for k in sorted(units)]
