"""Runs a harness's own grading functions on synthetic answers, in a child process (see probes.py).

Input (stdin, JSON): {"root": folder holding the grader files extracted from the wheel, "calls": [{"module",
"function", "process_docs" (optional), "doc", "responses"}]}. Output (stdout, JSON): one entry per call, the list of
the function's results per response, or an error string. The harness package itself is not installed: ``root``
holds only the task folders probed plus empty package markers, so importing a task's utils runs that file and the
libraries it imports, nothing else of the harness. Model text is only ever passed as data.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from typing import Any


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    return v if v is None or isinstance(v, str) else str(v)


def run(spec: dict[str, Any]) -> list[dict[str, Any]]:
    sys.path.insert(0, spec["root"])
    out = []
    for call in spec["calls"]:
        try:
            mod = importlib.import_module(call["module"])
            fn = getattr(mod, call["function"])
            doc = call["doc"]
            if call.get("process_docs"):
                import datasets

                doc = getattr(mod, call["process_docs"])(datasets.Dataset.from_list([doc]))[0]
            results = []
            for response in call["responses"]:
                try:
                    results.append({"result": _plain(fn(doc, [response]))})
                except Exception as e:  # one failing case voids that case only
                    results.append({"error": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"})
            out.append({"doc": _plain(doc), "results": results})
        except Exception as e:
            out.append({"error": f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"})
    return out


def main() -> int:
    spec = json.load(sys.stdin)
    json.dump(run(spec), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
