"""Cross-cutting checks for the simple-evals, SimpleQA, IFEval, ZeroEval and SWE-bench adapters: the `sources`
listing, and provenance handed through from the read context (manifest URI, revision, license)."""

import pytest

from audit.cli import main
from audit.ingest import read_target
from audit.sources import ReadContext, discover

MINE = {"simple_evals": "simple_evals_ru", "simpleqa_graded": "simpleqa_tavily", "ifeval_results": "ifeval_mifeval",
        "zeroeval": "zeroeval", "swebench_leaderboard": "swebench_leaderboard"}


def test_sources_lists_each_format_with_description_and_example(capsys):
    assert main(["sources"]) == 0
    out = capsys.readouterr().out.splitlines()
    for name in [*MINE, "swebench_experiments"]:
        i = next(i for i, line in enumerate(out) if line.split()[:1] == [name])
        assert len(out[i].split(None, 1)[1]) > 20  # a one-line description
        assert out[i + 1].strip().startswith("e.g. ")  # and an example path
    for name, folder in MINE.items():
        assert any(line.strip() == f"e.g. ../shared/data/{folder}" for line in out), name


@pytest.mark.parametrize("adapter,folder", sorted(MINE.items()))
def test_example_folder_is_detected_and_provenance_carried(shared_data, adapter, folder):
    root = shared_data / folder
    assert {a.name for a, _ in discover(root).units} == {adapter}
    ctx = ReadContext(root=root, uri_prefix=f"https://example.org/{folder}/raw/abc123", revision="abc123",
                      license="Apache-2.0", source_name=folder)
    res = read_target(root, ctx)
    assert res.batches and not res.unrecognised
    for b in res.batches:
        p = b.provenance
        assert p.uri.startswith(f"https://example.org/{folder}/raw/abc123/")
        assert (p.revision, p.license, p.format) == ("abc123", "Apache-2.0", adapter)
        assert len(p.sha256) == 64 and p.source_id.startswith(f"{adapter}:{folder}/")
        assert p.n_read == b.responses.num_rows + b.quarantine.num_rows > 0
