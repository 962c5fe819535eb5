"""A new tabular layout ingests through a YAML mapping, with no code: CSV, JSONL and parquet."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audit.ingest import read_target
from audit.sources import adapters

adapters()  # load every adapter before importing one module directly (a partial registry hides the rest)
from audit.sources.generic_mapped import MappingError
from audit.sources import discover

CSV = """qid,system,question,output,answer,score,verdict,p
q1,acme/m-1,2+2?,4,4,1,ok,0.9
q2,acme/m-1,Capital of Italy?,Paris,Rome,0,bad,0.2
q3,acme/m-1,Who won?,I don't know,Ann,,C,
q4,,x?,a,b,1,ok,0.5
q5,acme/m-1,x?,a,b,zz,ok,0.5
q6,acme/m-1,x?,a,b,1,ok,1.5
q1,acme/m-1,again,4,4,1,ok,0.9
"""


def test_csv_folder_with_mapping_file(tmp_path: Path):
    d = tmp_path / "my_eval"
    d.mkdir()
    (d / "grades.csv").write_text(CSV)
    (d / "notes.txt").write_text("not data")
    (d / "bench-audit.mapping.yaml").write_text(
        "files: ['*.csv']\n"
        "columns: {sample_id: qid, model: system, prompt: question, response: output, gold: answer,\n"
        "          original_score: score, source_label: verdict, confidence: p}\n"
        "constants: {benchmark: my_qa, grader: my_qa/exact}\n"
        "outcome: {from: verdict, correct_values: [ok], abstained_values: [C]}\n")
    found = discover(d)
    assert [a.name for a, _ in found.units] == ["generic_mapped"] and found.unrecognised == []
    res = read_target(d)
    [b] = res.batches
    n_lines = len(CSV.strip().splitlines()) - 1  # records in the file, counted independently
    assert b.provenance.n_read == n_lines == b.responses.num_rows + b.quarantine.num_rows == 7
    rows = {r["sample_id"]: r for r in b.responses.to_pylist()}
    assert sorted(rows) == ["q1", "q2", "q3"]
    assert rows["q1"]["outcome"] == "correct" and rows["q1"]["confidence"] == 0.9 and rows["q1"]["gold"] == "4"
    assert rows["q2"]["outcome"] == "wrong" and rows["q2"]["original_score"] == 0.0
    assert rows["q3"]["outcome"] == "abstained" and rows["q3"]["source_label"] == "C"
    assert {r["model"] for r in rows.values()} == {"acme/m-1"} and rows["q1"]["benchmark"] == "my_qa"
    q = dict(zip(b.quarantine["locator"].to_pylist(), b.quarantine["reason"].to_pylist()))
    assert q["grades.csv:5"] == "missing model (column 'system')"  # line 5 of the file (header is line 1)
    assert q["grades.csv:6"] == "original_score is not a finite number"
    assert q["grades.csv:7"] == "confidence outside [0, 1]"
    assert any("duplicate" in r for r in q.values())
    assert b.provenance.sha256 and b.provenance.uri.endswith("grades.csv")


def test_jsonl_with_nested_paths_and_a_mapping_passed_as_the_input(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    recs = [{"id": i, "meta": {"model": "m/x", "task": "gsm8k"}, "out": {"text": f"ans {i}"}, "reward": r}
            for i, r in enumerate([1.0, 0.4, 0.75, None])]
    lines = [json.dumps(r) for r in recs] + ["", "{not json"]
    (data / "run.jsonl").write_text("\n".join(lines) + "\n")
    m = tmp_path / "mine.mapping.yaml"
    m.write_text("files: [data/*.jsonl]\n"
                 "columns: {sample_id: id, model: meta.model, benchmark: meta.task, response: out.text,\n"
                 "          original_score: reward}\n"
                 "constants: {grader: rm/threshold}\n"
                 "outcome: {correct_at: 0.7}\n")
    [b] = read_target(m).batches
    assert b.provenance.n_read == 5 == b.responses.num_rows + b.quarantine.num_rows  # the blank line is no record
    got = [(r["sample_id"], r["outcome"], r["response"]) for r in b.responses.to_pylist()]
    assert got == [("0", "correct", "ans 0"), ("1", "wrong", "ans 1"), ("2", "correct", "ans 2")]
    assert b.responses["benchmark"].to_pylist() == ["gsm8k"] * 3  # canonicalised through the registry
    q = dict(zip(b.quarantine["locator"].to_pylist(), b.quarantine["reason"].to_pylist()))
    assert q == {"run.jsonl:4": "no grade in column 'reward'", "run.jsonl:6": "invalid JSON"}


def test_parquet_layout(tmp_path: Path):
    d = tmp_path / "pq"
    d.mkdir()
    pq.write_table(pa.table({"item": ["a", "b", "c"], "llm": ["m1", "m1", "m1"], "pass": [True, False, True],
                             "conf": [0.8, 0.6, float("nan")]}), d / "x.parquet")
    (d / "bench-audit.mapping.yaml").write_text(
        "columns: {sample_id: item, model: llm, confidence: conf}\n"
        "constants: {benchmark: custom, grader: unit_tests}\n"
        "outcome: {from: pass, correct_values: ['true']}\n")
    [b] = read_target(d).batches
    assert b.provenance.n_read == 3
    assert [(r["sample_id"], r["outcome"]) for r in b.responses.to_pylist()] == [("a", "correct"), ("b", "wrong")]
    assert b.quarantine.to_pylist()[0]["locator"] == "x.parquet[2]"


@pytest.mark.parametrize("text, message", [
    ("columns: {sample_id: id}\noutcome: {from: s, correct_at: 1}\n", "required field(s) benchmark, grader, model"),
    ("columns: {sample_id: id, model: m, benchmark: b, grader: g}\noutcome: {from: s}\n", "exactly one of"),
    ("columns: {sample_id: id, model: m, benchmark: b, grader: g, wat: x}\noutcome: {from: s, correct_at: 1}\n",
     "unknown field(s) wat"),
    ("columns: {sample_id: id, model: nope, benchmark: b, grader: g}\noutcome: {from: id, correct_at: 1}\n",
     "column 'nope' not in the file"),
])
def test_bad_mappings_fail_with_a_clear_message(tmp_path: Path, text: str, message: str):
    (tmp_path / "a.csv").write_text("id,m,b,g,s\n1,x,y,z,1\n")
    (tmp_path / "bench-audit.mapping.yaml").write_text(text)
    with pytest.raises(MappingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_target(tmp_path)


def test_docs_worked_example_through_the_cli(tmp_path: Path):
    """The example in docs/adapters.md, ingested with `bench-audit ingest` into a catalog: configuration only."""
    from audit.cli import main
    from catalog.writer import connect_reader

    doc = (Path(__file__).resolve().parents[1] / "docs" / "adapters.md").read_text()
    section = doc[doc.index("## Generic mapped tables"):]
    csv_text = section.split("# my_eval/grades.csv\n", 1)[1].split("```", 1)[0]
    yaml_text = section.split("# my_eval/bench-audit.mapping.yaml\n", 1)[1].split("```", 1)[0]
    d = tmp_path / "my_eval"
    d.mkdir()
    (d / "grades.csv").write_text(csv_text)
    (d / "bench-audit.mapping.yaml").write_text(yaml_text)
    db = tmp_path / "c.duckdb"
    assert main(["ingest", str(d), "--db", str(db)]) == 0
    con = connect_reader(db)
    got = con.sql("SELECT sample_id, outcome, abstention_reason FROM responses ORDER BY sample_id").fetchall()
    assert got == [("q1", "correct", None), ("q2", "wrong", None), ("q3", "abstained", "source:verdict")]
    assert con.sql("SELECT format, n_read, n_accepted FROM sources").fetchall() == [("generic_mapped", 3, 3)]
