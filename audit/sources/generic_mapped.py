"""Generic CSV / JSONL / parquet adapter driven by a small YAML column mapping: a new layout needs configuration only.

The mapping is a file named ``bench-audit.mapping.yaml`` in the data folder (the folder is then one unit), or any
``<name>.mapping.yaml`` passed directly as the input (its ``files`` globs are resolved relative to it)::

    files: ["*.csv"]                 # globs relative to the mapping file; default: every csv / jsonl / parquet
    format: csv                      # csv | jsonl | parquet; default: from each file's extension
    columns:                         # canonical field -> source column (JSONL: a dotted path into the object)
      sample_id: qid                 # required
      model: system                  # a column, or give it under constants
      response: output
      extracted_answer: parsed
      gold: answer
      original_score: score
      source_label: verdict
      confidence: p_correct
    constants:                       # canonical field -> the same value for every row
      benchmark: my_qa
      grader: my_qa/exact_match
    outcome:
      from: score                    # the column that decides the outcome (default: columns.original_score)
      correct_at: 1                  # numeric: value >= correct_at is correct ...
      # correct_values: ["A", "yes"] # ... or: these values are correct
      abstained_values: ["C"]        # optional: these values are abstentions (checked first)

Everything else is ``wrong``. A row whose sample id, model, benchmark or grade is missing, whose score or
confidence is not a number, or whose confidence is outside [0, 1] is quarantined with a reason naming the file and
row. Files are read with DuckDB / pyarrow and mapped in one SQL statement per file (no per-row Python).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from audit.records import MAX_RAW_CHARS, QUARANTINE_SCHEMA, RESPONSE_SCHEMA, SourceBatch, finish_batch
from audit.sources import ReadContext, register

MAPPING_NAME = "bench-audit.mapping.yaml"
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
FIELDS = ("sample_id", "benchmark", "grader", "model", "prompt", "response", "extracted_answer", "gold",
          "original_score", "source_label", "confidence")
REQUIRED = ("sample_id", "benchmark", "grader", "model")


class MappingError(ValueError):
    pass


@dataclass
class Mapping:
    path: Path
    files: list[str]
    format: str | None
    columns: dict[str, str]
    constants: dict[str, str]
    outcome_from: str
    correct_at: float | None = None
    correct_values: list[str] = field(default_factory=list)
    abstained_values: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> "Mapping":
        try:
            data = yaml.safe_load(path.read_text("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise MappingError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise MappingError(f"{path}: expected a mapping at top level")
        unknown = set(data) - {"files", "format", "columns", "constants", "outcome"}
        if unknown:
            raise MappingError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
        files = data.get("files") or ["*.csv", "*.jsonl", "*.ndjson", "*.parquet"]
        files = [files] if isinstance(files, str) else [str(f) for f in files]
        fmt = data.get("format")
        if fmt is not None and fmt not in set(FORMATS.values()):
            raise MappingError(f"{path}: format {fmt!r} not one of csv, jsonl, parquet")
        columns = {str(k): str(v) for k, v in (data.get("columns") or {}).items()}
        constants = {str(k): str(v) for k, v in (data.get("constants") or {}).items()}
        for where, d in (("columns", columns), ("constants", constants)):
            bad = set(d) - set(FIELDS)
            if bad:
                raise MappingError(f"{path}: {where} names unknown field(s) {', '.join(sorted(bad))}; "
                                   f"known: {', '.join(FIELDS)}")
        both = set(columns) & set(constants)
        if both:
            raise MappingError(f"{path}: {', '.join(sorted(both))} given as both a column and a constant")
        missing = [f for f in REQUIRED if f not in columns and f not in constants]
        if missing:
            raise MappingError(f"{path}: no column or constant for required field(s) {', '.join(missing)}")
        out = data.get("outcome") or {}
        if not isinstance(out, dict):
            raise MappingError(f"{path}: outcome must be a mapping")
        src = out.get("from") or columns.get("original_score")
        if not src:
            raise MappingError(f"{path}: outcome.from is required when no original_score column is mapped")
        correct_at = out.get("correct_at")
        correct_values = [str(v) for v in out.get("correct_values") or []]
        if (correct_at is None) == (not correct_values):
            raise MappingError(f"{path}: give exactly one of outcome.correct_at or outcome.correct_values")
        return cls(path, files, fmt, columns, constants, str(src),
                   None if correct_at is None else float(correct_at), correct_values,
                   [str(v) for v in out.get("abstained_values") or []])

    def data_files(self) -> list[Path]:
        base = self.path.parent
        found: dict[Path, None] = {}
        for g in self.files:
            for p in sorted(base.glob(g)):
                if p.is_file() and not p.is_symlink() and p != self.path:
                    found[p] = None
        if not found:
            raise MappingError(f"{self.path}: files {self.files} match nothing in {base}")
        return list(found)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _load_table(path: Path, fmt: str) -> tuple[pa.Table, bool]:
    """The file as an Arrow table with a ``__row`` index; JSONL comes as raw lines (parsed in SQL)."""
    if fmt == "parquet":
        t = pq.read_table(path)
        is_json = False
    elif fmt == "csv":
        con = duckdb.connect()
        try:
            t = con.sql(f"select * from read_csv({_lit(str(path))}, header=true, all_varchar=true)").to_arrow_table()
        except duckdb.Error as e:
            raise MappingError(f"{path}: cannot read as CSV: {e}") from None
        finally:
            con.close()
        is_json = False
    else:
        lines = path.read_bytes().split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        text = pa.array([l.decode("utf-8", "replace") for l in lines], pa.string())
        t = pa.table({"line": text, "__blank": pc.equal(pc.utf8_trim_whitespace(text), "")})
        is_json = True
    return t.append_column("__row", pa.array(range(1, t.num_rows + 1), pa.int64())), is_json


def _expr(m: Mapping, name: str, columns: set[str], is_json: bool) -> str:
    """SQL text for one canonical field (NULL when unmapped)."""
    if name in m.constants:
        return _lit(m.constants[name])
    col = m.columns.get(name)
    if col is None:
        return "NULL"
    return _col(col, columns, is_json, m)


def _col(col: str, columns: set[str], is_json: bool, m: Mapping) -> str:
    if is_json:
        return f"json_extract_string(__json, {_lit('$.' + col)})"
    if col not in columns:
        raise MappingError(f"{m.path}: column {col!r} not in the file (has {', '.join(sorted(columns))})")
    return f"CAST({_ident(col)} AS VARCHAR)"


def map_file(m: Mapping, path: Path, source_id: str) -> tuple[pa.Table, pa.Table, int]:
    """One data file through the mapping: (rows, quarantined rows, records read). `finish_batch` canonicalises and
    de-duplicates the rows."""
    fmt = m.format or FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise MappingError(f"{path}: cannot tell the format from the extension; set format: in {m.path.name}")
    t, is_json = _load_table(path, fmt)
    if is_json:
        t = t.filter(pc.invert(t["__blank"])).drop_columns(["__blank"])
    n_read = t.num_rows
    names = set(t.column_names) - {"__row"}
    e = {f: _expr(m, f, names, is_json) for f in FIELDS}
    grade = _col(m.outcome_from, names, is_json, m)
    num = lambda x: f"TRY_CAST({x} AS DOUBLE)"  # noqa: E731
    if m.correct_at is not None:
        correct = f"{num(grade)} >= {m.correct_at!r}"
    else:
        correct = f"{grade} IN ({', '.join(_lit(v) for v in m.correct_values)})"
    abst = f"{grade} IN ({', '.join(_lit(v) for v in m.abstained_values)})" if m.abstained_values else "FALSE"
    checks = ["WHEN __json IS NULL THEN 'invalid JSON'"] if is_json else []
    for f in REQUIRED:
        if f not in m.constants:
            checks.append(f"WHEN NULLIF(TRIM({e[f]}), '') IS NULL THEN {_lit(f'missing {f} (column {m.columns[f]!r})')}")
    checks.append(f"WHEN {grade} IS NULL THEN {_lit(f'no grade in column {m.outcome_from!r}')}")
    if m.correct_at is not None:
        checks.append(f"WHEN {num(grade)} IS NULL AND NOT ({abst}) THEN "
                      f"{_lit(f'grade in column {m.outcome_from!r} is not a number')}")
    for f in ("original_score", "confidence"):
        if e[f] != "NULL":
            checks.append(f"WHEN {e[f]} IS NOT NULL AND ({num(e[f])} IS NULL OR NOT isfinite({num(e[f])})) "
                          f"THEN {_lit(f'{f} is not a finite number')}")
    if e["confidence"] != "NULL":
        checks.append(f"WHEN {num(e['confidence'])} < 0 OR {num(e['confidence'])} > 1 THEN 'confidence outside [0, 1]'")
    raw = "line" if is_json else "CAST(to_json(t) AS VARCHAR)"
    sql = f"""
        SELECT __row,
               CASE {' '.join(checks)} ELSE NULL END AS __reason,
               {raw} AS __raw,
               {', '.join(f"{e[f]} AS {f}" for f in FIELDS if f not in ('original_score', 'confidence'))},
               {num(e['original_score'])} AS original_score,
               {num(e['confidence'])} AS confidence,
               CASE WHEN {abst} THEN 'abstained' WHEN {correct} THEN 'correct' ELSE 'wrong' END AS outcome,
               CASE WHEN {abst} THEN {_lit('source:' + m.outcome_from)} END AS abstention_reason
        FROM {"(SELECT *, CASE WHEN json_valid(line) THEN line END AS __json FROM t) AS t" if is_json else "t"}
        ORDER BY __row"""
    con = duckdb.connect()
    try:
        con.register("t", t)
        out = con.sql(sql).to_arrow_table()
    except duckdb.Error as err:
        raise MappingError(f"{path}: mapping {m.path.name} does not apply: {err}") from None
    finally:
        con.close()
    bad = pc.is_valid(out["__reason"])
    good = out.filter(pc.invert(bad))
    rej = out.filter(bad)
    n = good.num_rows
    responses = pa.table({
        **{f.name: (good[f.name] if f.name in good.column_names else pa.nulls(n, f.type)) for f in RESPONSE_SCHEMA
           if f.name not in ("source_id", "ingest_run_id")},
    })
    responses = responses.append_column("source_id", pa.array([source_id] * n, pa.string()))
    responses = responses.append_column("ingest_run_id", pa.nulls(n, pa.string()))
    responses = responses.select(RESPONSE_SCHEMA.names).cast(RESPONSE_SCHEMA)
    raw_text = pc.utf8_slice_codeunits(pc.cast(rej["__raw"], pa.string()), 0, MAX_RAW_CHARS)
    quarantine = pa.table({
        "source_id": pa.array([source_id] * rej.num_rows, pa.string()),
        "locator": _locators(path.name, fmt, rej["__row"]),
        "raw": raw_text,
        "reason": rej["__reason"],
        "ingest_run_id": pa.nulls(rej.num_rows, pa.string()),
    }, schema=QUARANTINE_SCHEMA)
    return responses, quarantine, n_read


def _locators(name: str, fmt: str, rows: pa.ChunkedArray) -> pa.Array:
    """``file:<line>`` for text formats (a CSV's header is line 1), ``file[<index>]`` for parquet."""
    n = len(rows)
    if fmt == "parquet":
        idx = pc.cast(pc.subtract(rows, 1), pa.string())
        return pc.binary_join_element_wise(pa.array([name + "["] * n, pa.string()), idx, pa.array(["]"] * n), "")
    line = pc.add(rows, 1) if fmt == "csv" else rows
    return pc.binary_join_element_wise(pa.array([name] * n, pa.string()), pc.cast(line, pa.string()), ":")


class GenericMapped:
    name = "generic_mapped"
    description = "Any CSV / JSONL / parquet layout + a YAML column mapping (bench-audit.mapping.yaml or X.mapping.yaml)"
    example = "docs/adapters.md#generic-mapped (a folder with bench-audit.mapping.yaml beside the data)"

    def sniff(self, path: Path) -> bool:
        if path.is_dir():
            return (path / MAPPING_NAME).is_file()
        return path.is_file() and (path.name.endswith(".mapping.yaml") or path.name.endswith(".mapping.yml"))

    def read(self, path: Path, ctx: ReadContext) -> Iterator[SourceBatch]:
        mapping = Mapping.load(path / MAPPING_NAME if path.is_dir() else path)
        for f in mapping.data_files():
            rel_root = ctx.root if _inside(f, ctx.root) else f.parent
            sub = ReadContext(root=rel_root, uri_prefix=ctx.uri_prefix if rel_root == ctx.root else None,
                              revision=ctx.revision, license=ctx.license, source_name=ctx.source_name)
            source_id = sub.source_id(self.name, f)
            responses, quarantine, n_read = map_file(mapping, f, source_id)
            yield finish_batch(responses, quarantine, sub.provenance(self.name, f, source_id), n_read,
                               notes=[f"mapping: {mapping.path}"])


def _inside(p: Path, root: Path) -> bool:
    try:
        p.relative_to(root)
        return True
    except ValueError:
        return False


register(GenericMapped())
