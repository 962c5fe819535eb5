"""The source manifest (catalog/registry/sources.yaml): the default public sources, and where to read them.

``resolve_sources`` turns what the user typed (paths, manifest names, or nothing) into readable targets.
With ``--mirror DIR`` a manifest source ``NAME`` is read from ``DIR/NAME``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from audit.sources import ReadContext


@dataclass
class Target:
    label: str  # what the user or the manifest called it
    path: str
    context: ReadContext | None
    error: str | None = None  # set when the source cannot be reached; reported, not fatal


@lru_cache(maxsize=1)
def manifest() -> tuple[dict[str, Any], ...]:
    text = resources.files("catalog").joinpath("registry/sources.yaml").read_text("utf-8")
    return tuple(yaml.safe_load(text)["sources"])


def manifest_names() -> list[str]:
    return [s["name"] for s in manifest()]


class SourceUnavailable(RuntimeError):
    pass


def _from_manifest(entry: dict[str, Any], mirror: str | None) -> Target:
    name = entry["name"]
    if mirror is None:
        raise SourceUnavailable(
            f"manifest source {name!r} lives at {entry['base_url']}; downloading is not available in this build. "
            f"Pass --mirror DIR where DIR/{name} holds a copy.")
    root = Path(mirror) / name
    if not root.exists():
        raise SourceUnavailable(f"manifest source {name!r}: {root} does not exist under the mirror {mirror}")
    ctx = ReadContext(root=root, uri_prefix=entry.get("base_url"), revision=entry.get("revision"),
                      license=entry.get("license"), source_name=name)
    return Target(name, str(root), ctx)


def resolve_sources(sources: list[str] | None, mirror: str | None = None) -> list[Target]:
    """Paths are read where they are; names from the manifest go through ``mirror``; nothing means every
    manifest source."""
    by_name = {s["name"]: s for s in manifest()}

    def named(entry: dict[str, Any]) -> Target:
        try:
            return _from_manifest(entry, mirror)
        except SourceUnavailable as e:
            return Target(entry["name"], "", None, error=str(e))

    if not sources:
        return [named(e) for e in manifest()]
    out = []
    for s in sources:
        p = Path(s)
        if p.exists():
            out.append(Target(s, s, ReadContext(root=p)))
        elif s in by_name:
            out.append(named(by_name[s]))
        else:
            raise FileNotFoundError(
                f"{s}: not a file or folder, and not a manifest source (known: {', '.join(by_name)}). "
                "Give a path to published outputs, or a name from `bench-audit sources --manifest`.")
    return out
