"""Static evidence: the harnesses' own task catalogs, read from their wheels as data (no harness import).

lm-evaluation-harness: every task YAML under ``lm_eval/tasks``, parsed the way the harness's own index does
(``lm_eval/tasks/_index.py`` in 0.4.13): ``!function`` tags are recorded as the function's dotted name, never
executed; ``include:`` is resolved relative to the including file, recursively, local keys winning and an
included ``task_list`` not inherited; a config with ``class`` is a Python task, one with ``group`` a group, one
with ``task`` a leaf task; a file with none of them is a template only reached through ``include``.
The first file to define a task name wins, as in the harness. Defaults are stated once in
catalog/registry/grading_metrics.yaml (output_type generate_until; metrics per output type).

HELM: ``helm/benchmark/static/schema_*.yaml``; a run group without subgroups is a leaf, its
``environment.main_name`` the main metric. A run group defined in several schema files is kept once (first file).

Each task maps to the taxonomy through the rule table in grading_metrics.yaml; the rule's id and reason travel
with the row, so a reviewer can see why a task got its scheme.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable

import pyarrow as pa
import yaml

from audit.benchmarks import canonical
from audit.grading.taxonomy import Evidence
from audit.grading.wheels import Archive

TASKS_PREFIX = "lm_eval/tasks/"
HELM_SCHEMA = re.compile(r"^helm/benchmark/static/schema_[\w-]+\.yaml$")

HARNESS_TASKS_SCHEMA = pa.schema([
    ("catalog", pa.string()), ("catalog_version", pa.string()), ("task", pa.string()), ("kind", pa.string()),
    ("benchmark", pa.string()), ("config_path", pa.string()), ("output_type", pa.string()),
    ("output_type_defaulted", pa.bool_()), ("metrics", pa.list_(pa.string())), ("primary_metric", pa.string()),
    ("metrics_defaulted", pa.bool_()), ("filters", pa.list_(pa.string())), ("process_results", pa.string()),
    ("includes", pa.list_(pa.string())), ("scheme", pa.string()), ("idk_credit", pa.string()),
    ("wrong_penalty", pa.string()), ("grader_kind", pa.string()), ("rewards_guessing", pa.bool_()),
    ("rule", pa.string()), ("rule_reason", pa.string()),
])

PARSE_ERRORS_SCHEMA = pa.schema([("catalog", pa.string()), ("catalog_version", pa.string()),
                                 ("config_path", pa.string()), ("error", pa.string())])


class FunctionRef(str):
    """A ``!function module.name`` tag, kept as its dotted name."""


class _RecordingLoader(yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader):
    """Safe YAML plus ``!function``, which it records instead of importing."""


_RecordingLoader.add_constructor("!function", lambda loader, node: FunctionRef(loader.construct_scalar(node)))


# -- the rule table -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    id: str
    scheme: str
    idk_credit: str
    grader_kind: str | None
    why: str
    kind: str | None = None
    output_type: re.Pattern | None = None
    metric: re.Pattern | None = None
    process_results: re.Pattern | None = None

    def matches(self, kind: str, output_type: str, metric: str, process_results: str | None) -> bool:
        if self.kind is not None and kind != self.kind:
            return False
        if self.kind is None and kind == "python_task":
            return False
        if self.output_type is not None and not self.output_type.fullmatch(output_type or ""):
            return False
        if self.metric is not None and not self.metric.fullmatch(metric or ""):
            return False
        if self.process_results is not None and not self.process_results.fullmatch(process_results or ""):
            return False
        return True


@lru_cache(maxsize=1)
def _registry() -> dict[str, Any]:
    return yaml.safe_load(resources.files("catalog").joinpath("registry/grading_metrics.yaml").read_text("utf-8"))


def _rules(key: str) -> tuple[Rule, ...]:
    out = []
    for r in _registry()[key]:
        rx = {k: re.compile(r[k], re.IGNORECASE) for k in ("output_type", "metric", "process_results") if r.get(k)}
        out.append(Rule(id=r["id"], scheme=r["scheme"], idk_credit=r["idk_credit"], grader_kind=r.get("grader_kind"),
                        why=r["why"], kind=r.get("kind"), **rx))
    return tuple(out)


@lru_cache(maxsize=4096)
def decide(kind: str, output_type: str, metric: str, process_results: str | None, helm: bool = False) -> Rule:
    """The first rule matching a task's (kind, output type, primary metric, process_results)."""
    table = (_rules("helm_rules") + _rules("rules")) if helm else _rules("rules")
    for rule in table:
        if rule.matches(kind, output_type, metric, process_results):
            return rule
    raise AssertionError("the rule table ends with a catch-all")


def rewards_guessing_for(idk_credit: str, scheme: str = "") -> bool | None:
    if scheme == "not_applicable":
        return None
    if idk_credit in ("none", "chance", "not_expressible"):
        return True
    if idk_credit == "full":
        return False
    return None


# -- lm-evaluation-harness ----------------------------------------------------------------------------------------
class LmEvalCatalog:
    """The task YAMLs of one lm-eval wheel (or unpacked folder), parsed in memory."""

    def __init__(self, archive: Archive, version: str) -> None:
        self.archive = archive
        self.version = version
        self._raw: dict[str, Any] = {}
        self.paths: dict[str, str] = {}  # leaf task -> the file that defines it

    def _load(self, name: str) -> Any:
        if name not in self._raw:
            self._raw[name] = yaml.load(self.archive.read(name), Loader=_RecordingLoader)  # noqa: S506 (safe loader)
        return self._raw[name]

    def resolved(self, name: str, _chain: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[str]]:
        """The config with its includes merged (local keys win), and the files included, in order."""
        cfg = self._load(name)
        if not isinstance(cfg, dict):
            raise ValueError(f"expected a mapping, got {type(cfg).__name__}")
        if "include" not in cfg:
            return dict(cfg), []
        cfg = dict(cfg)
        incs = cfg.pop("include")
        merged: dict[str, Any] = {}
        chain = _chain + (name,)
        included: list[str] = []
        for inc in incs if isinstance(incs, list) else [incs]:
            path = posixpath.normpath(posixpath.join(posixpath.dirname(name), str(inc)))
            if path in chain:
                raise ValueError(f"include cycle: {' -> '.join(chain + (path,))}")
            if not self.archive.has(path):
                raise FileNotFoundError(f"include {inc!r} not found (resolved to {path})")
            sub, subinc = self.resolved(path, chain)
            sub.pop("task_list", None)
            merged.update(sub)
            included += [path] + subinc
        merged.update(cfg)
        return merged, included

    def yaml_files(self) -> list[str]:
        return sorted(n for n in self.archive.names() if n.startswith(TASKS_PREFIX) and n.endswith(".yaml")
                      and "__pycache__" not in n and ".ipynb_checkpoints" not in n)

    def entries(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
        """(leaf task rows, parse errors, counts per config kind)."""
        defaults = _registry()["lm_eval_defaults"]
        rows: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        counts = {"task": 0, "python_task": 0, "group": 0, "template": 0, "duplicate": 0}
        seen: set[str] = set()
        for path in self.yaml_files():
            try:
                cfg, included = self.resolved(path)
            except Exception as e:  # a clear row per file, never a crash
                errors.append({"catalog": "lm_eval", "catalog_version": self.version, "config_path": path,
                               "error": f"{type(e).__name__}: {e}"})
                continue
            if "class" in cfg:
                kind = "python_task"
            elif "group" in cfg:
                counts["group"] += 1
                continue
            elif "task" in cfg:
                kind = "task"
            else:
                counts["template"] += 1
                continue
            name = str(cfg["task"])
            if name in seen:
                counts["duplicate"] += 1
                continue
            seen.add(name)
            self.paths[name] = path
            counts[kind] += 1
            try:
                rows.append(self._row(name, kind, path, cfg, included, defaults))
            except Exception as e:
                errors.append({"catalog": "lm_eval", "catalog_version": self.version, "config_path": path,
                               "error": f"{type(e).__name__}: {e}"})
        return rows, errors, counts

    def _row(self, name: str, kind: str, path: str, cfg: dict, included: list[str], defaults: dict) -> dict:
        ot_given = cfg.get("output_type")
        output_type = str(ot_given) if ot_given is not None else defaults["output_type"]
        metric_list = cfg.get("metric_list")
        if kind == "python_task":  # the class decides; the YAML's keys (if any) are passed to it
            metrics = [str(m.get("metric")) for m in metric_list or [] if isinstance(m, dict)]
        elif metric_list:
            metrics = [str(m.get("metric")) if isinstance(m, dict) else str(m) for m in metric_list]
        else:
            metrics = list(defaults["metrics"].get(output_type, []))
        filters = []
        for f in cfg.get("filter_list") or []:
            if isinstance(f, dict):
                steps = ">".join(str(s.get("function")) for s in f.get("filter") or [] if isinstance(s, dict))
                filters.append(f"{f.get('name')}: {steps}")
        pr = cfg.get("process_results")
        pr_name = str(pr).rsplit("/", 1)[-1] if pr is not None else None
        primary = metrics[0] if metrics else ""
        rule = decide(kind, output_type, primary, pr_name)
        return {
            "catalog": "lm_eval", "catalog_version": self.version, "task": name, "kind": kind,
            "benchmark": canonical(name), "config_path": path, "output_type": output_type if kind == "task" else None,
            "output_type_defaulted": ot_given is None, "metrics": metrics, "primary_metric": primary or None,
            "metrics_defaulted": not metric_list, "filters": filters, "process_results": pr_name,
            "includes": included, "scheme": rule.scheme, "idk_credit": rule.idk_credit,
            "wrong_penalty": "none", "grader_kind": rule.grader_kind,
            "rewards_guessing": rewards_guessing_for(rule.idk_credit, rule.scheme), "rule": rule.id, "rule_reason": rule.why,
        }

    def config(self, task: str) -> dict[str, Any]:
        """The resolved config of one leaf task (for the probes)."""
        if not self.paths:
            self.entries()
        if task not in self.paths:
            raise KeyError(f"task {task!r} not in lm_eval {self.version}")
        return self.resolved(self.paths[task])[0] | {"__path__": self.paths[task]}


def lm_eval_tasks(archive: Archive, version: str) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    cat = LmEvalCatalog(archive, version)
    rows, errors, counts = cat.entries()
    return (pa.Table.from_pylist(rows, schema=HARNESS_TASKS_SCHEMA),
            pa.Table.from_pylist(errors, schema=PARSE_ERRORS_SCHEMA), counts)


# -- HELM -----------------------------------------------------------------------------------------------------------
def helm_run_groups(archive: Archive, version: str) -> tuple[pa.Table, pa.Table]:
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for path in sorted(n for n in archive.names() if HELM_SCHEMA.match(n)):
        try:
            schema = yaml.load(archive.read(path), Loader=_RecordingLoader)  # noqa: S506 (safe loader)
            groups = (schema or {}).get("run_groups") or []
        except Exception as e:
            errors.append({"catalog": "helm", "catalog_version": version, "config_path": path,
                           "error": f"{type(e).__name__}: {e}"})
            continue
        for g in groups:
            if not isinstance(g, dict) or not g.get("name") or g.get("subgroups") or g["name"] in seen:
                continue
            seen.add(g["name"])
            metric = str((g.get("environment") or {}).get("main_name") or "none")
            rule = decide("task", "generate_until", metric, None, helm=True)
            rows.append({
                "catalog": "helm", "catalog_version": version, "task": g["name"], "kind": "run_group",
                "benchmark": canonical(g["name"]), "config_path": path, "output_type": None,
                "output_type_defaulted": None, "metrics": [metric], "primary_metric": metric,
                "metrics_defaulted": False, "filters": [], "process_results": None, "includes": [],
                "scheme": rule.scheme, "idk_credit": rule.idk_credit, "wrong_penalty": "none",
                "grader_kind": rule.grader_kind, "rewards_guessing": rewards_guessing_for(rule.idk_credit, rule.scheme),
                "rule": rule.id, "rule_reason": rule.why,
            })
    return (pa.Table.from_pylist(rows, schema=HARNESS_TASKS_SCHEMA),
            pa.Table.from_pylist(errors, schema=PARSE_ERRORS_SCHEMA))


# -- evidence for catalog units -------------------------------------------------------------------------------------
_HARNESS_GRADER = re.compile(r"^(?P<catalog>lm_eval|helm|open_llm_leaderboard)/(?P<task>[^/]+)(/.*)?$")


def static_evidence(tasks: pa.Table, units: Iterable[tuple[str, str]]) -> list[Evidence]:
    """Static evidence for each (benchmark, grader) unit whose grader names a harness task in ``tasks``:
    ``lm_eval/<task>/<metric>`` (the lm-eval adapter's grader id), ``open_llm_leaderboard/<task>/<metric>``
    (the Open LLM Leaderboard ran lm-eval's ``leaderboard_*`` tasks), ``helm/<run group>``, or ``helm/<metric>``
    (the HELM adapter's id: matched to the run groups of that benchmark whose main metric it is)."""
    from audit.grading.taxonomy import BINARY_SCHEMES

    if tasks.num_rows == 0:
        return []
    import pyarrow.compute as pc

    helm = tasks.filter(pc.equal(tasks["catalog"], "helm")).select(["task", "benchmark", "primary_metric"])
    helm_groups = set(helm["task"].to_pylist())
    helm_by_metric = {}
    for t, b, m in zip(*(helm[c].to_pylist() for c in helm.column_names)):
        helm_by_metric.setdefault((b, m), t)
    wanted: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for bench, grader in units:
        m = _HARNESS_GRADER.match(grader)
        if not m:
            continue
        catalog, task = m.group("catalog"), m.group("task")
        if catalog == "open_llm_leaderboard":
            catalog = "lm_eval"
        elif catalog == "helm" and task not in helm_groups:
            task = helm_by_metric.get((bench, task))
            if task is None:
                continue
        wanted.setdefault((catalog, task), []).append((bench, grader))
    if not wanted:
        return []
    keys = pc.binary_join_element_wise(tasks["catalog"], tasks["task"], "/")
    hit = tasks.filter(pc.is_in(keys, pa.array(sorted(f"{c}/{t}" for c, t in wanted))))
    out = []
    for r in hit.to_pylist():
        if r["catalog"] == "helm":
            detail = (f"{r['config_path']}: run group {r['task']}, environment.main_name={r['primary_metric']}; "
                      f"rule {r['rule']}: {r['rule_reason']}")
            citation = f"crfm-helm {r['catalog_version']} wheel, {r['config_path']}"
        else:
            detail = (f"{r['config_path']}: output_type={r['output_type']}"
                      f"{' (default)' if r['output_type_defaulted'] else ''}; metric_list={r['metrics']}"
                      f"{' (defaults)' if r['metrics_defaulted'] else ''}; filter_list={r['filters'] or 'none'}; "
                      f"process_results={r['process_results'] or 'none'}; rule {r['rule']}: {r['rule_reason']}")
            citation = f"lm-eval {r['catalog_version']} wheel, {r['config_path']}"
        binary = None if r["scheme"] in ("unknown", "not_applicable") else r["scheme"] in BINARY_SCHEMES
        for bench, grader in wanted[(r["catalog"], r["task"])]:
            out.append(Evidence(
                kind="static", benchmark=bench, grader=grader, scheme=r["scheme"], idk_credit=r["idk_credit"],
                wrong_penalty=r["wrong_penalty"], grader_kind=r["grader_kind"], binary_grading=binary,
                detail=detail, citation=citation))
    return out
