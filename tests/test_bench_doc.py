"""`make bench` rewrites BENCHMARKS.md: it keeps the sections other targets write and the dated log.

A review found that bench.py kept only the explicit bench and the fault suite, so one `make bench` would have
deleted the log (every section headed with its date) that docs/quality.md, known-gaps.md and the code cite."""
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("embedrec_bench", ROOT / "benchmarks" / "bench.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

DOC = """# Benchmarks

Old paragraph.

<!-- explicit-bench:start -->
## Explicit ratings vs Surprise

| a | b |
<!-- explicit-bench:end -->

## Quality on MovieLens 100K (real data)

old figures

## 2026-12-03 (session 29, latest): something

log 29
<!-- not a marker of the next section -->
more of log 29

### a subsection

## 2026-11-30: Beyond one machine

log
<!-- an end marker right above the next heading stays here -->
## Measured 2026-11-24 with the previous defaults

commands

## Quality on MovieLens 100K (real data)

old make bench figures

### a table

## Fault suite

315 of 315

## Not measured

- old
"""


def test_kept_sections_are_the_other_targets_and_the_dated_log_in_order():
    kept = [s for s in bench.kept_sections(DOC) if s]
    assert [s.split("\n")[0] for s in kept] == ["<!-- explicit-bench:start -->",
                                              "## 2026-12-03 (session 29, latest): something",
                                              "## 2026-11-30: Beyond one machine",
                                              "## Measured 2026-11-24 with the previous defaults", "## Fault suite"]
    assert kept[0].endswith("<!-- explicit-bench:end -->")
    assert kept[1].endswith("### a subsection") and "more of log 29" in kept[1]
    assert kept[2].endswith("<!-- an end marker right above the next heading stays here -->")
    # an earlier make bench's sections go under its heading, a level down
    assert kept[3] == ("## Measured 2026-11-24 with the previous defaults\n\ncommands\n\n"
                       "### Quality on MovieLens 100K (real data)\n\nold make bench figures\n\n#### a table")
    assert kept[4] == "## Fault suite\n\n315 of 315"


def test_every_dated_section_of_the_real_benchmarks_file_is_kept_whole():
    doc = (ROOT / "BENCHMARKS.md").read_text()
    kept = "\n".join(bench.kept_sections(doc))
    dated = re.findall(r"^## \d{4}-\d{2}-\d{2}.*$", doc, re.M)
    assert len(dated) > 20
    for head in dated:  # each up to the next '## ' heading, byte for byte
        start = doc.index("\n" + head + "\n") + 1
        end = doc.find("\n## ", start)
        assert doc[start:end].rstrip() in kept, head
    for head in ("## Fault suite", "## Explicit ratings vs Surprise"):
        assert head in kept
    assert "## Not measured" not in kept  # make bench writes its own
    for head in ("### Side features on ML-100K", "### Cold start: 10% of ML-100K", "### 1M users x 500K movies"):
        assert head in kept, head  # the 2026-11-24 run's figures, under its heading
