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

## Fault suite

315 of 315

## Not measured

- old
"""


def test_kept_sections_are_the_other_targets_and_the_dated_log_in_order():
    kept = [s for s in bench.kept_sections(DOC) if s]
    assert [s.split("\n")[0] for s in kept] == ["<!-- explicit-bench:start -->",
                                              "## 2026-12-03 (session 29, latest): something",
                                              "## 2026-11-30: Beyond one machine", "## Fault suite"]
    assert kept[0].endswith("<!-- explicit-bench:end -->")
    assert kept[1].endswith("### a subsection") and "more of log 29" in kept[1]
    assert kept[3] == "## Fault suite\n\n315 of 315"


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
