"""Canonical benchmark ids: map the many names harnesses use to one id (data in catalog/registry/benchmarks.yaml)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pyarrow as pa
import pyarrow.compute as pc
import yaml


@dataclass(frozen=True)
class Benchmark:
    id: str
    name: str
    n_choices: int | None = None


@lru_cache(maxsize=1)
def _registry() -> tuple[dict[str, Benchmark], dict[str, str], list[tuple[re.Pattern, str]]]:
    text = resources.files("catalog").joinpath("registry/benchmarks.yaml").read_text("utf-8")
    entries = yaml.safe_load(text)["benchmarks"]
    by_id: dict[str, Benchmark] = {}
    aliases: dict[str, str] = {}
    patterns: list[tuple[re.Pattern, str]] = []
    for e in entries:
        b = Benchmark(e["id"], e["name"], e.get("n_choices"))
        by_id[b.id] = b
        aliases[b.id.lower()] = b.id
        for a in e.get("aliases", []):
            aliases[a.lower()] = b.id
        for p in e.get("patterns", []):
            patterns.append((re.compile(p, re.IGNORECASE), b.id))
    return by_id, aliases, patterns


def known() -> dict[str, Benchmark]:
    return dict(_registry()[0])


@lru_cache(maxsize=4096)
def canonical(name: str) -> str:
    """The canonical id for a benchmark name; unknown names pass through unchanged (lower-cased, trimmed)."""
    _, aliases, patterns = _registry()
    key = name.strip().lower()
    if key in aliases:
        return aliases[key]
    for rx, bid in patterns:
        if rx.fullmatch(key):
            return bid
    return key


def canonicalise_column(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Apply ``canonical`` once per distinct value of a string column."""
    col = pc.cast(col, pa.string())
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    enc = col.dictionary_encode()
    mapped = pa.array([canonical(v) if v is not None else None for v in enc.dictionary.to_pylist()], pa.string())
    return pc.take(mapped, enc.indices)
