"""The projector export opened in the real TensorBoard, in headless Chromium (benchmarks/projector_check.py).

Skipped where Chromium or TensorBoard is not installed (on Debian: apt-get install chromium; tensorboard is in
the test extra), so `make test` passes on a machine without a browser."""

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from embedrec.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import projector_check as pc  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("tensorboard")
    found = pc.find_browser()
    if found is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    if not Path(pc.EMBEDREC).exists():
        pytest.skip("the embedrec console script is not installed next to this Python")
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory, synth_dir):
    tmp = tmp_path_factory.mktemp("projector")
    invoke = CliRunner().invoke
    r = invoke(main, ["ingest", "-q", str(synth_dir[0]), "-o", str(tmp / "ds")])
    assert r.exit_code == 0, r.stderr
    r = invoke(main, ["train", "-q", "--run", str(tmp / "run"), "--set", f"data.prepared={tmp / 'ds'}",
                      "--set", "model.dim=8", "--set", "train.epochs=2", "--set", "train.threads=1", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    return tmp / "run"


def test_projector_draws_the_exported_points(browser, run, tmp_path):
    report = pc.check(run, tmp_path / "check", users=20, min_point_pixels=1000)
    tensors = report["tensorboard_api"]["tensors"]
    assert report["tensorboard_api"]["runs"] == ["embedrec"]
    assert tensors["movies"]["points"] == 200 and tensors["movies"]["dim"] == 8
    assert tensors["users"]["points"] == 20
    assert tensors["movies"]["metadata"][:2] == ["movie_id", "title"]
    assert report["seen"]["point_pixels"] >= 1000 and report["seen"]["header_orange_share"] > 0.5


def test_the_screenshot_check_sees_a_projector_without_points(browser, tmp_path):
    """The control: TensorBoard over a folder with no export shows 'No checkpoint was found', and the check
    counts no point pixels there (so a pass above means the points were really drawn)."""
    logdir = tmp_path / "empty"
    logdir.mkdir()
    with pc.TensorBoard(logdir, log_path=tmp_path / "tb.log") as tb:
        pc.screenshot(browser, f"{tb.url}/#projector", tmp_path / "empty.png", budget_ms=10000)
    seen = pc.analyse(tmp_path / "empty.png")
    assert seen["header_orange_share"] > 0.5 and seen["point_pixels"] == 0
