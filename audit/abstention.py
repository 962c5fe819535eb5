"""Abstention detection: decide, per record, whether the model declined to answer, and by which rule.

The detector reads the extracted answer when the source extracted one, else the raw response. Rules are
anchored (the answer *is* an abstention, not a chain of thought that mentions doubt on the way to an answer).
A format failure (empty or unparsed answer) is not an abstention: it stays as the source scored it.
Vectorised: every rule is one regular-expression pass over the column (pyarrow, RE2 syntax).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc

# Leading noise a model often puts before its answer: quotes, "A:", "Answer:", markdown.
_LEAD = r"^[\s\"'*_>`#-]*(?:(?:final\s+)?answer\s*[:\-]\s*|a\s*:\s*)?[\s\"'*_]*"


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: str  # RE2, matched case-insensitively against the answer text


RULES: tuple[Rule, ...] = (
    Rule("idk_en", _LEAD + r"(?:i\s+(?:really\s+)?(?:do\s*n['’]?t|do\s+not)\s+know|i\s+(?:am|['’]m)\s+not\s+(?:sure|certain)|"
                           r"not\s+sure|i\s+(?:am|['’]m)\s+unsure|unknown\.?\s*$|i\s+(?:have\s+)?no\s+idea)"),
    Rule("no_comment_en", _LEAD + r"(?:i\s+have\s+no\s+comment|no\s+comment)"),
    Rule("cannot_answer_en", _LEAD + r"(?:i\s+(?:cannot|can['’]?t|am\s+unable\s+to|['’]m\s+unable\s+to)\s+"
                                     r"(?:answer|determine|provide\s+(?:an?\s+)?answer|say|know|verify|find)|"
                                     r"(?:this|it|that|the\s+answer)\s+cannot\s+be\s+determined|cannot\s+be\s+determined|"
                                     r"there\s+is\s+(?:not\s+enough|insufficient)\s+information|insufficient\s+information)"),
    Rule("refusal_en", _LEAD + r"(?:i['’]?m\s+sorry,?\s+(?:but\s+)?i\s+(?:cannot|can['’]?t)|i\s+(?:cannot|can['’]?t|won['’]?t)\s+"
                               r"(?:help|assist|comply)|as\s+an\s+ai)"),
)


class Detector(Protocol):
    """Anything that maps a text column to (abstained?, rule name or null). An LLM judge can stand here."""

    name: str

    def __call__(self, texts: pa.Array) -> tuple[pa.Array, pa.Array]: ...


class RuleDetector:
    name = "rules"

    def __init__(self, rules: tuple[Rule, ...] = RULES) -> None:
        self.rules = rules

    def __call__(self, texts: pa.Array) -> tuple[pa.Array, pa.Array]:
        texts = pc.fill_null(pc.cast(texts, pa.string()), "")
        reason = pa.nulls(len(texts), pa.string())
        for rule in reversed(self.rules):  # first rule wins: apply in reverse so earlier ones overwrite
            hit = pc.match_substring_regex(texts, rule.pattern, ignore_case=True)
            reason = pc.if_else(hit, pa.scalar(f"detector:{rule.name}"), reason)
        return pc.is_valid(reason), reason


DEFAULT_DETECTOR: Detector = RuleDetector()


def assign_outcomes(table: pa.Table, detector: Detector = DEFAULT_DETECTOR) -> pa.Table:
    """Mark detected abstentions; a source's own abstention label (outcome already 'abstained') is kept.

    The answer text is ``extracted_answer`` when present, else ``response``.
    """
    if table.num_rows == 0:
        return table
    text = pc.coalesce(table["extracted_answer"], table["response"])
    hit, reason = detector(text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text)
    already = pc.fill_null(pc.equal(table["outcome"], "abstained"), False)
    newly = pc.and_(hit, pc.invert(already))
    outcome = pc.if_else(newly, pa.scalar("abstained"), table["outcome"])
    why = pc.if_else(newly, reason, table["abstention_reason"])
    table = table.set_column(table.schema.get_field_index("outcome"), "outcome", outcome)
    return table.set_column(table.schema.get_field_index("abstention_reason"), "abstention_reason", why)
