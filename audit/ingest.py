"""Turn an input (file or folder) into canonical batches: discover adapters, read, decide outcomes.

Pure domain code: no catalog, no Prefect. The flows call ``read_target`` and hand the batches to the writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from audit.abstention import DEFAULT_DETECTOR, Detector, assign_outcomes
from audit.records import SourceBatch
from audit.sources import ReadContext, discover
from audit.validation import validate_batches


@dataclass
class ReadResult:
    target: str
    batches: list[SourceBatch] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)
    # unrecognised path -> why it was not read (names the file; e.g. a symlink that is never followed)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def n_read(self) -> int:
        return sum(b.provenance.n_read for b in self.batches)


def read_target(target: str | Path, ctx: ReadContext | None = None, *, only: str | None = None,
                detector: Detector = DEFAULT_DETECTOR, validate: bool = True) -> ReadResult:
    path = Path(target)
    ctx = ctx or ReadContext(root=path)
    found = discover(path, only=only)
    result = ReadResult(str(target), unrecognised=[str(p) for p in found.unrecognised],
                        reasons={str(p): found.reason(p) for p in found.unrecognised})
    for adapter, unit in found.units:
        for batch in adapter.read(unit, ctx):
            batch.responses = assign_outcomes(batch.responses, detector)
            batch.check_reconciled()
            result.batches.append(batch)
    if validate:
        # Great Expectations suites over the canonical rows (one GE run for the whole read): failing rows move
        # to quarantine with the expectation's name; per-expectation results ride along in batch.validation.
        validate_batches(result.batches)
        for batch in result.batches:
            batch.check_reconciled()
    return result
