import functools
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from embedrec.config import Config
from embedrec.data.synth import write_movielens
from embedrec.device import _cuda_possible as _REAL_CUDA_POSSIBLE

# The property tests (tests/test_properties.py) draw the same examples every run, so `make test` passes or fails
# the same way on every machine; HYPOTHESIS_PROFILE=explore draws new ones, 20x as many (`make fuzz`).
settings.register_profile("fixed", derandomize=True, database=None)
settings.register_profile("explore", max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))
# no "still working" line in the tests' captured stderr (a command silent for a minute on a loaded machine would
# add one to what a test reads); tests/test_cli.py's heartbeat test sets its own
os.environ.setdefault("EMBEDREC_HEARTBEAT_S", "0")


def pytest_configure(config):
    """Each of make test's worker processes (pytest-xdist) takes its share of the cores for torch's own threads,
    not all of them: four workers on a 64-core machine would each start 64 (training picks its threads itself,
    embedrec.threads)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        import torch

        from embedrec.threads import available_cpus

        torch.set_num_threads(max(1, available_cpus() // int(workers)))


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory):
    """A cache of the session's own for the module and session fixtures, which run before _isolate gives each test
    its own (a review: they wrote the user's ~/.cache/embedrec, which make test's parallel workers share)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDREC_CACHE", str(tmp_path_factory.mktemp("session-cache")))
        yield


@pytest.fixture(autouse=True, scope="session")
def _session_on_the_cpu():
    """On a machine with a GPU, train.device auto would take it, and the known answers, bit-exact resumes and
    torch-free als runs that the suite checks are the CPU's (an H200 run of the suite: 46 such failures, session
    36). The suite runs as on a CPU box; the tests marked gpu see the machine as it is (they skip without one)."""
    from embedrec import device as DV

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DV, "_cuda_possible", lambda: False)
        yield


@pytest.fixture(autouse=True)
def _isolate(monkeypatch, tmp_path, request):
    monkeypatch.setenv("EMBEDREC_CACHE", str(tmp_path / "cache"))
    if request.node.get_closest_marker("gpu"):
        from embedrec import device as DV

        monkeypatch.setattr(DV, "_cuda_possible", _REAL_CUDA_POSSIBLE)
    else:  # the installed command and torchrun's ranks, which this process starts, as on a CPU box too
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    logging.getLogger("embedrec").handlers.clear()


def repo_pythonpath() -> str:
    """PYTHONPATH for a child process: this checkout first, then the caller's own (a machine whose packages are
    on PYTHONPATH, faiss on an H200 box, lost them where the tests set the checkout alone: session 38)."""
    return os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]))


def hangup_default() -> None:
    """``preexec_fn`` of a child a test hangs up on (SIGHUP): the signal at its default, as a terminal's session
    starts it. A suite started under ``nohup`` (or by a shell that ignores SIGHUP) hands its ignore down, and
    embedrec keeps an ignored SIGHUP ignored (nohup's promise), so the child went on and exited 0."""
    import signal

    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def write(path: Path, text: str, encoding="utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def ml100k_dir(tmp_path):
    """A tiny folder in the ML-100K layout (tab-separated u.data, pipe/Latin-1 u.item and u.user)."""
    d = tmp_path / "ml-100k"
    rows = []
    rng = np.random.default_rng(0)
    for u in range(1, 11):
        for m in range(1, 9):
            if (u + m) % 3:
                rows.append(f"{u}\t{m}\t{rng.integers(1, 6)}\t{880000000 + u * 100 + m}")
    write(d / "u.data", "\n".join(rows) + "\n")
    flags = ["0"] * 19
    items = []
    for m in range(1, 9):
        f = list(flags)
        f[1 + m % 3] = "1"
        f[8] = "1"
        title = "Señor Movie (1995)" if m == 1 else f"Film {m}, The ({1990 + m})"
        items.append(f"{m}|{title}|01-Jan-{1990 + m}||http://x|" + "|".join(f))
    write(d / "u.item", "\n".join(items) + "\n", encoding="latin-1")
    write(d / "u.user", "\n".join(f"{u}|{20 + u}|{'MF'[u % 2]}|writer|0{u}000" for u in range(1, 11)) + "\n")
    return d


@pytest.fixture
def small_cfg(tmp_path):
    cfg = Config()
    cfg = cfg.updated({"model.objective": 'explicit', "train.refit": False})
    cfg = cfg.updated({"data.prepared": str(tmp_path / 'prepared')})
    cfg = cfg.updated({"run.dir": str(tmp_path / 'run')})
    cfg = cfg.updated({"train.epochs": 3})
    cfg = cfg.updated({"model.dim": 8})
    return cfg


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """Planted rank-4 data in the MovieLens-latest layout: 300 users x 200 movies x 20,000 ratings."""
    d = tmp_path_factory.mktemp("synth")
    truth = write_movielens(d, 300, 200, 20000, rank=4, seed=1, noise=0.3)
    return d, truth


# the model of the session's trained run: small and explicit (ratings), single-threaded adam, deterministic
TRAINED_RUN = ("model.dim=8", "train.epochs=3", "model.objective=explicit", "train.refit=false",
               "train.optimizer=adam", "train.threads=1")


@dataclass(frozen=True)
class TrainedRun:
    cfg: Config        # the resolved config (data.prepared, run.dir set): take a copy.deepcopy before changing it
    model: object      # the er.TrainedModel in memory (its .metrics are what `embedrec train` prints)
    opened: object     # er.open(run dir): the saved run
    sets: tuple        # the same config as CLI options: ('--set', 'data.prepared=...', '--set', 'run.dir=...', ...)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, synth_dir) -> TrainedRun:
    """synth_dir ingested and a model trained on it once (er.train + save), for tests that only read a run.

    Shared by the whole session: never write into its run or dataset directory (copy it first) and never change
    its config in place."""
    import embedrec as er
    from embedrec.config import load_config

    tmp = tmp_path_factory.mktemp("trained-run")
    sets = (f"data.prepared={tmp / 'ds'}", f"run.dir={tmp / 'run'}", *TRAINED_RUN)
    with pytest.MonkeyPatch.context() as mp:  # session scope: the per-test cache of _isolate is not set yet
        mp.setenv("EMBEDREC_CACHE", str(tmp / "cache"))
        cfg = load_config(None, sets)
        ds = er.ingest(str(synth_dir[0]), cfg)
        model = er.train(ds, cfg)
        model.save()
        opened = er.open(cfg.run.dir, cfg)
    return TrainedRun(cfg, model, opened, tuple(x for s in sets for x in ("--set", s)))


@functools.cache
def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
        return True
    except OSError:
        return False


def pytest_runtest_setup(item):
    """Tests marked ``network`` need the package registry (the offline MovieLens copy is a PyPI wheel)."""
    if item.get_closest_marker("network") and not _pypi_reachable():
        pytest.skip("needs PyPI, which is unreachable")


def bars_drawn(err: str) -> dict[str, list[str]]:
    """Each bar's frames in ``err`` by its description, as tqdm drew them (``\\r`` apart; a line apart where the text
    was read with universal newlines, as subprocess.run(text=True) reads it): {desc: [frame, ...]}."""
    drawn: dict[str, list[str]] = {}
    for frame in re.split(r"[\r\n]", err):
        m = re.match(r"(.+?): +\d+%\|", frame.strip())
        if m:
            drawn.setdefault(m.group(1), []).append(frame.strip())
    return drawn


def bar_ends(frames: list[str]) -> list[tuple[str, str]]:
    """Where each drawing of one bar ended (a drawing starts at its 0% frame): [(count, total), ...] as its last
    frame shows them (where tqdm draws every update: mininterval 0, miniters 1). A bar that reached its total
    ends at (N, N)."""
    ends: list[tuple[str, str]] = []
    for frame in frames:
        if re.search(r": +0%\|", frame) or not ends:
            ends.append(("", ""))
        counted = re.search(r"\| ([^/ ]+)/([^ ]+) \[", frame)
        if counted:
            ends[-1] = (counted.group(1), counted.group(2))
    return ends
