"""Curated evidence: grading facts with a citation, from catalog/registry/grading_curated.yaml."""

from __future__ import annotations

import fnmatch
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

import yaml

from audit.grading.taxonomy import Evidence

REFERENCE = "reference"


@lru_cache(maxsize=1)
def entries() -> tuple[dict[str, Any], ...]:
    text = resources.files("catalog").joinpath("registry/grading_curated.yaml").read_text("utf-8")
    return tuple(yaml.safe_load(text)["entries"])


def table2() -> list[dict[str, Any]]:
    """The paper's Table 2 rows as curated (benchmark, scoring, binary, idk_credit)."""
    return [{"benchmark": e["benchmark"], **e["table2"]} for e in entries() if "table2" in e]


def _evidence(e: dict[str, Any], grader: str, detail: str, specific: bool = True) -> Evidence:
    return Evidence(
        kind="curated", benchmark=e["benchmark"], grader=grader, scheme=e["scheme"], idk_credit=e["idk_credit"],
        wrong_penalty=e.get("wrong_penalty"), grader_kind=e.get("grader_kind"),
        binary_grading=e.get("binary_grading"), score_correct=e.get("c"), score_abstain=e.get("a"),
        score_wrong=e.get("w"), detail=detail + (f"; {e['note']}" if e.get("note") else ""),
        citation=e["citation"] + (f"; {e['source']}" if e.get("source") else ""), specific=specific,
    )


def curated_evidence(units: Iterable[tuple[str, str]] = ()) -> list[Evidence]:
    """Evidence for every curated reference unit, plus for each observed (benchmark, grader) unit: the entry
    naming that grader (glob patterns allowed), else the benchmark's reference entry, marked as such."""
    out = [_evidence(e, REFERENCE, "curated entry for the benchmark's reference grader")
           for e in entries() if e["grader"] == REFERENCE]
    for bench, grader in units:
        if grader == REFERENCE:
            continue
        specific = [e for e in entries() if e["benchmark"] == bench and e["grader"] != REFERENCE
                    and fnmatch.fnmatchcase(grader, e["grader"])]
        if specific:
            out.append(_evidence(specific[0], grader, f"curated entry for grader {specific[0]['grader']}"))
            continue
        ref = [e for e in entries() if e["benchmark"] == bench and e["grader"] == REFERENCE]
        if ref:
            out.append(_evidence(ref[0], grader, "curated entry for the benchmark's reference grader; "
                                                 "this implementation is not cited specifically", specific=False))
    return out


def implementation_units() -> list[tuple[str, str]]:
    """(benchmark, grader) for the harness implementations curated entries name (``implementations``)."""
    return [(e["benchmark"], g) for e in entries() for g in e.get("implementations") or []]
