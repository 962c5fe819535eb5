"""The grading-scheme taxonomy (SPEC.md) and the evidence record every classifier source produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMES = (
    "binary_exact", "binary_forced_choice", "binary_chance_fallback", "binary_lm_judge", "abstention_tracked_zero",
    "abstention_credited", "penalized_wrong", "partial_composite", "continuous_overlap", "probabilistic",
    "lm_judge_scalar", "pairwise_preference", "not_applicable", "unknown",
)
IDK_CREDITS = ("none", "chance", "partial", "full", "conditional", "not_expressible", "unknown")
WRONG_PENALTIES = ("none", "negative")
GRADER_KINDS = ("rule", "execution", "loglikelihood", "lm_judge", "human")
EVIDENCE_KINDS = ("probe", "curated", "static", "empirical")  # decision priority, strongest first

BINARY_SCHEMES = {"binary_exact", "binary_forced_choice", "binary_chance_fallback", "binary_lm_judge",
                  "abstention_tracked_zero", "partial_composite"}


def implied_threshold(c: float | None, a: float | None, w: float | None) -> float | None:
    """t* = (a - w) / (c - w): the confidence above which answering beats abstaining under this grader."""
    if c is None or a is None or w is None or c == w:
        return None
    return (a - w) / (c - w)


def rewards_guessing(a: float | None, w: float | None, idk_credit: str) -> bool | None:
    """The paper's criterion a <= w. Where the grader guesses for the model (chance credit) or abstention cannot
    be expressed, abstaining can never beat a guess either."""
    if idk_credit in ("chance", "not_expressible"):
        return True
    if idk_credit == "conditional":  # depends on the item (e.g. which IFEval instruction): no single answer
        return None
    if a is None or w is None:
        return None
    return a <= w


@dataclass
class Evidence:
    kind: str  # one of EVIDENCE_KINDS
    benchmark: str
    grader: str
    scheme: str | None = None
    idk_credit: str | None = None
    wrong_penalty: str | None = None
    grader_kind: str | None = None
    binary_grading: bool | None = None
    score_correct: float | None = None
    score_abstain: float | None = None
    score_wrong: float | None = None
    detail: str = ""
    citation: str | None = None
    # False where the evidence describes the benchmark's reference grader, not this implementation (a curated
    # fallback): it then ranks below every implementation-specific piece of evidence.
    specific: bool = True

    def __post_init__(self) -> None:
        if self.kind not in EVIDENCE_KINDS:
            raise ValueError(f"evidence kind {self.kind!r} not in {EVIDENCE_KINDS}")
        if self.scheme is not None and self.scheme not in SCHEMES:
            raise ValueError(f"scheme {self.scheme!r} not in taxonomy")
        if self.idk_credit is not None and self.idk_credit not in IDK_CREDITS:
            raise ValueError(f"idk_credit {self.idk_credit!r} not in taxonomy")


@dataclass
class Classification:
    benchmark: str
    grader: str
    scheme: str
    idk_credit: str
    wrong_penalty: str
    grader_kind: str | None
    binary_grading: bool | None
    implied_t: float | None
    rewards_guessing: bool | None
    evidence_kinds: list[str]
    conflicts: list[dict[str, Any]] = field(default_factory=list)
