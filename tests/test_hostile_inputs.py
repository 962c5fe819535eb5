"""A bad-input corpus, written by the tests in the two reference formats' exact published layouts:

- lm-evaluation-harness ``--log_samples``: ``<org>__<model>/samples_<task>_<timestamp>.jsonl`` beside
  ``results_<timestamp>.json`` (generate_until records: doc_id, doc, target, arguments, resps, filtered_resps,
  filter, metrics, *_hash, one key per metric), as in ../shared/data/truthfulqa_multi.
- Official MMLU-Pro harness: ``model_outputs_<MODEL>_<N>shots.json``, a JSON array of question objects
  (question_id, question, options, answer, answer_index, cot_content, category, src, pred, generated_text),
  as in ../shared/data/mmlu_pro_tiger.

Every bad record is quarantined (or the file rejected) with a reason that names the file and the record; every good
record beside it is kept; per source, records read = accepted + quarantined.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path


from audit.ingest import read_target
from audit.records import MAX_RAW_CHARS
from audit.sources.jsonio import MAX_RECORD_BYTES

TS = "2024-05-01T10-00-00.000000"
TASK = "gsm8k"


# -- writers in the published layouts ---------------------------------------------------------------------------
def lm_record(doc_id, response="42", exact_match=1.0, **over) -> dict:
    rec = {
        "doc_id": doc_id,
        "doc": {"question": f"What is 6 x 7? (item {doc_id})", "answer": "#### 42"},
        "target": "42",
        "arguments": {"gen_args_0": {"arg_0": f"Question: What is 6 x 7? (item {doc_id})\nAnswer:",
                                     "arg_1": {"until": ["Question:", "</s>"], "do_sample": False}}},
        "resps": [[response]],
        "filtered_resps": [response],
        "filter": "strict-match",
        "metrics": ["exact_match"],
        "doc_hash": f"{doc_id:064x}" if isinstance(doc_id, int) else "0" * 64,
        "prompt_hash": "1" * 64,
        "target_hash": "2" * 64,
        "exact_match": exact_match,
    }
    rec.update(over)
    return rec


def write_lm(folder: Path, lines: list, model: str = "org/tiny-model") -> Path:
    """``lines``: dicts (serialised), str (written as is) or bytes (written raw); one line each."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"results_{TS}.json").write_text(json.dumps({"model_name": model, "config": {"model": "hf"}}))
    f = folder / f"samples_{TASK}_{TS}.jsonl"
    with f.open("wb") as fh:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            fh.write((line.encode() if isinstance(line, str) else line) + b"\n")
    return f


def mmlu_record(qid, pred="A", answer="A", text="Let's think step by step. The answer is (A).", **over) -> dict:
    rec = {
        "question_id": qid,
        "question": f"Question number {qid}?",
        "options": ["alpha", "beta", "gamma", "delta"],
        "answer": answer,
        "answer_index": "ABCD".index(answer) if answer in "ABCD" else 0,
        "cot_content": "",
        "category": "business",
        "src": "ori_mmlu-business_ethics",
        "pred": pred,
        "generated_text": text,
    }
    rec.update(over)
    return rec


def write_mmlu(folder: Path, body: bytes | list, model: str = "Tiny-7B") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / f"model_outputs_{model}_5shots.json"
    f.write_bytes(body if isinstance(body, bytes) else json.dumps(body, indent=1).encode())
    return f


def only_batch(target: Path):
    res = read_target(target)
    assert len(res.batches) == 1, (res.batches, res.unrecognised)
    b = res.batches[0]
    b.check_reconciled()
    return b


def quarantined(b) -> dict[str, str]:
    return dict(zip(b.quarantine["locator"].to_pylist(), b.quarantine["reason"].to_pylist()))


# -- truncation ---------------------------------------------------------------------------------------------------
def test_truncated_jsonl_keeps_every_complete_line(tmp_path):
    good = [lm_record(i) for i in range(4)]
    text = json.dumps(lm_record(4))
    f = write_lm(tmp_path / "org__m", good + [text[: len(text) // 2]])
    b = only_batch(f)
    assert b.provenance.n_read == 5
    assert b.responses["sample_id"].to_pylist() == ["0", "1", "2", "3"]
    q = quarantined(b)
    assert list(q) == [f"{f.name}:5"]
    assert q[f"{f.name}:5"].startswith("invalid JSON")
    assert f.name in b.provenance.source_id


def test_truncated_mmlu_pro_array_keeps_the_elements_before_the_damage(tmp_path):
    text = json.dumps([mmlu_record(i) for i in range(5)], indent=1)
    cut = text.index('"question_id": 3')
    f = write_mmlu(tmp_path, text[:cut + 30].encode())
    b = only_batch(f)
    assert b.responses["sample_id"].to_pylist() == ["0", "1", "2"]
    q = quarantined(b)
    assert list(q) == [f"{f.name}[3:]"]  # the damaged tail, named by where it starts
    assert "truncated" in q[f"{f.name}[3:]"]
    assert b.provenance.n_read == 4


# -- wrong types, missing keys, unparseable values ---------------------------------------------------------------
def test_wrong_types_and_missing_keys_in_log_samples(tmp_path):
    lines = [
        lm_record(0),
        lm_record({"nested": 1}),                                  # 2: id is an object
        lm_record(True),                                           # 3: id is a boolean
        lm_record(7.5),                                            # 4: id is a float
        lm_record(4, exact_match=[1]),                             # 5: metric is a list
        lm_record(5, exact_match="yes"),                           # 6: metric is not a number
        "[1, 2, 3]",                                               # 7: not an object
        '"just a string"',                                         # 8: not an object
        {k: v for k, v in lm_record(8).items() if k != "doc_id"},  # 9: no id
        {k: v for k, v in lm_record(9).items() if k != "filtered_resps"},  # 10: no response
        {k: v for k, v in lm_record(10).items() if k != "exact_match"},    # 11: no metric at all
        lm_record(11),
        '{"doc_id": 12, "doc": ' + "[" * 100_000 + "]" * 100_000 + "}",    # 13: nested 100,000 deep
        '{"doc_id": 13, "exact_match": ' + "9" * 5000 + "}",               # 14: a 5,000-digit integer
    ]
    f = write_lm(tmp_path / "org__m", lines)
    b = only_batch(f)
    assert b.responses["sample_id"].to_pylist() == ["0", "11"]
    q = quarantined(b)
    assert sorted(q, key=lambda s: int(s.rsplit(":", 1)[1])) == [f"{f.name}:{n}" for n in range(2, 12)] + [
        f"{f.name}:13", f"{f.name}:14"]
    assert "sample_id must be text or an integer, found dict" in q[f"{f.name}:2"]
    assert "found bool" in q[f"{f.name}:3"] and "found float" in q[f"{f.name}:4"]
    assert q[f"{f.name}:5"].startswith("TypeError") and q[f"{f.name}:6"].startswith("ValueError")
    assert q[f"{f.name}:7"] == "expected an object, found list"
    assert q[f"{f.name}:8"] == "expected an object, found str"
    assert "doc_id" in q[f"{f.name}:9"] and "filtered_resps" in q[f"{f.name}:10"]
    assert "no metric key" in q[f"{f.name}:11"]
    assert "RecursionError" in q[f"{f.name}:13"]
    assert "unparseable JSON" in q[f"{f.name}:14"]
    assert b.provenance.n_read == 14


def test_wrong_types_and_missing_keys_in_mmlu_pro(tmp_path):
    recs = [
        mmlu_record(0),
        mmlu_record([1, 2]),                                                    # id is a list
        "a string where a question object belongs",
        {k: v for k, v in mmlu_record(3).items() if k != "pred"},              # no pred
        {k: v for k, v in mmlu_record(4).items() if k != "generated_text"},    # no model output at all
        mmlu_record(5, pred=None),                                              # legitimately unparsed: kept
    ]
    f = write_mmlu(tmp_path, recs)
    b = only_batch(f)
    assert b.responses["sample_id"].to_pylist() == ["0", "5"]
    q = quarantined(b)
    assert set(q) == {f"{f.name}[{i}]" for i in (1, 2, 3, 4)}
    assert "found list" in q[f"{f.name}[1]"] and "found str" in q[f"{f.name}[2]"]
    assert "pred" in q[f"{f.name}[3]"] and "generated_text" in q[f"{f.name}[4]"]


# -- duplicates -----------------------------------------------------------------------------------------------------
def test_duplicate_sample_ids_keep_the_first_and_name_both_lines(tmp_path):
    f = write_lm(tmp_path / "org__m", [lm_record(0), lm_record(1), lm_record(2), lm_record(1, response="other")])
    b = only_batch(f)
    assert b.responses["sample_id"].to_pylist() == ["0", "1", "2"]
    assert b.responses["response"].to_pylist()[1] == "42"  # the first record with the key is the one kept
    q = quarantined(b)
    assert list(q) == [f"{f.name}:4"]
    assert "duplicate key" in q[f"{f.name}:4"] and f"{f.name}:2" in q[f"{f.name}:4"]

    m = write_mmlu(tmp_path / "mm", [mmlu_record(7), mmlu_record(8), mmlu_record(7, pred="B")])
    b = only_batch(m)
    assert b.responses["sample_id"].to_pylist() == ["7", "8"]
    assert list(quarantined(b)) == [f"{m.name}[2]"] and f"{m.name}[0]" in quarantined(b)[f"{m.name}[2]"]


# -- encodings and sizes --------------------------------------------------------------------------------------------
def test_non_utf8_bytes_quarantine_only_their_own_record(tmp_path):
    bad_line = json.dumps(lm_record(1, response="PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"caf\xe9 \xff")
    f = write_lm(tmp_path / "org__m", [lm_record(0), bad_line, lm_record(2)])
    b = only_batch(f)
    assert b.responses["sample_id"].to_pylist() == ["0", "2"]
    assert quarantined(b)[f"{f.name}:2"].startswith("not UTF-8")

    body = json.dumps([mmlu_record(i, text="PLACEHOLDER" if i == 2 else "The answer is (A).") for i in range(4)])
    m = write_mmlu(tmp_path / "mm", body.encode().replace(b"PLACEHOLDER", b"Latin-1 r\xe9ponse"))
    b = only_batch(m)
    # one stray byte in element 2 costs element 2, not the file
    assert b.responses["sample_id"].to_pylist() == ["0", "1", "3"]
    q = quarantined(b)
    assert list(q) == [f"{m.name}[2]"] and "not UTF-8" in q[f"{m.name}[2]"]


def test_a_50_mb_single_line_is_quarantined_unparsed_and_truncated(tmp_path):
    huge = json.dumps(lm_record(1, response="x" * (50 * 1024 * 1024)))
    assert len(huge) > MAX_RECORD_BYTES
    f = write_lm(tmp_path / "org__m", [lm_record(0), huge, lm_record(2)])
    b = only_batch(f)
    assert b.responses["sample_id"].to_pylist() == ["0", "2"]
    q = b.quarantine.to_pylist()
    assert [r["locator"] for r in q] == [f"{f.name}:2"]
    assert "exceeds" in q[0]["reason"] and "record limit" in q[0]["reason"]
    assert len(q[0]["raw"]) <= MAX_RAW_CHARS + 100  # the catalog never stores the 50 MB


def test_a_50_mb_element_in_a_single_line_mmlu_pro_array(tmp_path):
    recs = [mmlu_record(0), mmlu_record(1, text="y" * (50 * 1024 * 1024)), mmlu_record(2)]
    m = write_mmlu(tmp_path, json.dumps(recs).encode())  # the whole array on one line, as json.dump writes it
    b = only_batch(m)
    assert b.responses["sample_id"].to_pylist() == ["0", "2"]
    q = quarantined(b)
    assert list(q) == [f"{m.name}[1]"] and "record limit" in q[f"{m.name}[1]"]


# -- scores -----------------------------------------------------------------------------------------------------------
def test_nan_infinite_and_out_of_range_scores(tmp_path):
    lines = [
        lm_record(0),
        '{"doc_id": 1, "filtered_resps": ["1"], "resps": [["1"]], "exact_match": NaN}',
        '{"doc_id": 2, "filtered_resps": ["1"], "resps": [["1"]], "exact_match": Infinity}',
        lm_record(3, exact_match=7.0),    # a binary metric cannot be 7: Great Expectations catches it
        lm_record(4, exact_match=-1.0),
        lm_record(5, exact_match=0.0),
    ]
    f = write_lm(tmp_path / "org__m", lines)
    b = only_batch(f)
    assert b.responses["sample_id"].to_pylist() == ["0", "5"]
    q = quarantined(b)
    assert "original_score is nan" in q[f"{f.name}:2"] and "original_score is inf" in q[f"{f.name}:3"]
    for n in (4, 5):
        assert q[f"{f.name}:{n}"] == ("validation failed: expect_column_values_to_be_between"
                                      "(original_score in [0, 1] (binary grader))")
    v = {(r["expectation"], r["column_name"]): r for r in b.validation.to_pylist()}
    between = v[("expect_column_values_to_be_between", "original_score")]
    assert between["success"] is False and between["unexpected_count"] == 2 and between["element_count"] == 4
    assert v[("expect_column_values_to_be_in_set", "outcome")]["success"] is True


# -- untrusted text ------------------------------------------------------------------------------------------------
SCRIPT = "I don't know. <script>alert('pwned')</script><img src=x onerror=alert(1)>"


def test_html_and_script_are_stored_verbatim_and_escaped_in_the_report(tmp_path):
    from audit.analysis import derived_tables
    from audit.report.html import write_report
    from catalog.writer import CatalogWriter

    model = "<b>evil</b>/model"
    f = write_lm(tmp_path / "org__m", [lm_record(0, response=SCRIPT, exact_match=0.0), lm_record(1),
                                       "<script>alert('raw line')</script>"], model=model)
    res = read_target(f)
    with CatalogWriter(tmp_path / "c.duckdb") as w:
        for batch in res.batches:
            w.load(batch, "run1")
        stored = w.con.sql("SELECT response, outcome, model FROM responses WHERE sample_id = '0'").fetchall()
        assert stored == [(SCRIPT, "abstained", model)]  # verbatim: escaping is the renderer's job
        for name, table in derived_tables(w.con, [0.0, 0.5]).items():
            w.replace_table(name, table)
        html = write_report(w.con, tmp_path / "r.html").read_text()
    assert "<script>alert" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert "<b>evil</b>" not in html
    assert "&lt;script&gt;alert(" in html and "&lt;b&gt;evil&lt;/b&gt;" in html


# -- archives and links --------------------------------------------------------------------------------------------
def _listing(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_a_zip_bomb_and_a_path_traversal_zip_are_quarantined_not_extracted(tmp_path):
    inp = tmp_path / "in"
    good = write_lm(inp / "org__m", [lm_record(0), lm_record(1)])
    bomb = inp / "samples_bomb_2024-05-01T10-00-00.000000.jsonl.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open(f"samples_{TASK}_{TS}.jsonl", "w") as member:  # ~200 MB of zeros in ~200 KB
            chunk = b"\0" * (1 << 20)
            for _ in range(200):
                member.write(chunk)
    assert bomb.stat().st_size < 2_000_000
    evil = inp / "outputs.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../../escaped.jsonl", json.dumps(lm_record(0)) + "\n")
        z.writestr("/abs/escaped.jsonl", json.dumps(lm_record(0)) + "\n")
    before = _listing(tmp_path)

    res = read_target(inp)

    assert _listing(tmp_path) == before  # nothing was extracted, anywhere
    assert not (tmp_path.parent / "escaped.jsonl").exists()
    ok = [b for b in res.batches if b.provenance.format == "lm_eval_samples"]
    assert [b.provenance.source_id.rsplit("/", 1)[1] for b in ok] == [good.name]
    assert ok[0].responses.num_rows == 2 and res.unrecognised == []
    # each archive is read in place (audit/sources/archive.py): every hostile member is a quarantine row naming
    # the archive, the member and why; nothing from them is accepted
    zips = {b.provenance.source_id.rsplit("/", 1)[1]: b for b in res.batches if b.provenance.format == "zip_archive"}
    assert set(zips) == {bomb.name, evil.name}
    assert all(b.responses.num_rows == 0 for b in zips.values())
    why = {loc: reason for b in zips.values() for loc, reason in
           zip(b.quarantine["locator"].to_pylist(), b.quarantine["reason"].to_pylist())}
    assert "zip bomb" in why[f"{bomb.name}!samples_{TASK}_{TS}.jsonl"]
    assert "zip slip" in why[f"{evil.name}!../../escaped.jsonl"]
    assert "absolute member name" in why[f"{evil.name}!/abs/escaped.jsonl"]
    for b in res.batches:
        b.check_reconciled()


def test_a_symlink_out_of_the_input_folder_is_not_followed(tmp_path):
    outside = write_lm(tmp_path / "outside" / "org__secret", [lm_record(i) for i in range(3)], model="org/secret")
    inp = tmp_path / "in"
    write_lm(inp / "org__m", [lm_record(0)])
    (inp / "org__m" / "samples_leak_2024-05-01T10-00-00.000000.jsonl").symlink_to(outside)
    (inp / "linked_dir").symlink_to(outside.parent, target_is_directory=True)

    res = read_target(inp)

    assert [b.responses["model"].to_pylist() for b in res.batches] == [["org/tiny-model"]]
    links = {Path(p).name: res.reasons[p] for p in res.unrecognised}
    assert set(links) == {"samples_leak_2024-05-01T10-00-00.000000.jsonl", "linked_dir"}
    for name, reason in links.items():
        assert name in reason and "symlink" in reason and "not followed" in reason


# -- the whole corpus, through the catalog ----------------------------------------------------------------------
def test_the_whole_corpus_reconciles_per_source_in_the_catalog(tmp_path):
    from flows.audit import ingest_sources

    inp = tmp_path / "corpus"
    write_lm(inp / "org__a", [lm_record(0), "{", lm_record(1, exact_match=3.0), lm_record(0), b"\xff\xfe",
                              lm_record(2, response=SCRIPT)], model="org/a")
    write_lm(inp / "org__b", [lm_record(i) for i in range(5)] + ['{"doc_id": 9, "exact_match": NaN}'], model="org/b")
    write_mmlu(inp / "mmlu", [mmlu_record(0), mmlu_record(1, pred=None), "oops", mmlu_record(0)])
    (inp / "stray.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    os.symlink(tmp_path, inp / "up")
    db = tmp_path / "c.duckdb"

    summary = ingest_sources([str(inp)], str(db))

    assert summary["read"] == 6 + 6 + 4 + 1  # + the empty zip, read as one record and quarantined
    assert summary["accepted"] == 2 + 5 + 2 and summary["quarantined"] == 4 + 1 + 2 + 1
    from catalog.writer import connect_reader

    con = connect_reader(db)
    rec = con.sql("SELECT n_read, n_accepted, n_quarantined, rows_in_responses, rows_in_quarantine "
                  "FROM source_reconciliation").fetchall()
    assert len(rec) == 4
    for n_read, acc, quar, in_resp, in_quar in rec:
        assert n_read == acc + quar == in_resp + in_quar
    # every quarantine row names the file and the record
    for source_id, locator in con.sql("SELECT source_id, locator FROM quarantine").fetchall():
        fname = source_id.rsplit("/", 1)[1]
        assert locator.startswith(fname) and locator != fname
    failed = {Path(t).name for (t,) in con.sql("SELECT target FROM source_failures").fetchall()}
    assert "up" in failed  # the symlink, not followed
    (why,) = con.sql("SELECT reason FROM quarantine WHERE locator = 'stray.zip!/'").fetchall()[0]
    assert "empty zip archive" in why
    v = con.sql("SELECT sum(unexpected_count) FROM validation_results WHERE NOT success").fetchall()[0][0]
    assert v == 1  # the binary score of 3.0 (the NaN never reaches GE: the record builder rejects it)
    con.close()
