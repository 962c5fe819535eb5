"""Small inputs the end-to-end tests build from the real published outputs (never copied into the repository)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any


def tampered_mmlu_pro(shared_data: Path, dest: Path, broken: dict[str, Any]) -> tuple[Path, list]:
    """The real MMLU-Pro outputs copied to ``dest``, with Mistral's first record replaced by ``broken`` (a record
    the adapter must quarantine). Returns the folder and the tampered file's records."""
    dest.mkdir(parents=True)
    for f in (shared_data / "mmlu_pro_tiger").glob("*.json"):
        shutil.copy(f, dest / f.name)
    target = dest / "model_outputs_Mistral-7B-Instruct-v0.2_5shots.json"
    raw = json.loads(target.read_text())
    raw[0] = broken
    target.write_text(json.dumps(raw))
    return dest, raw
