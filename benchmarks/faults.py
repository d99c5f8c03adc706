"""`make faults`: the fault suite of issue #17, and the harness tests/test_faults.py runs a fast subset of.

Every command runs as its own process through the real CLI (what a user runs), on small synthetic data in a
scratch folder, so a native crash is a result, not the end of the suite:

- kill -9 at a random moment of ``train``, ``ingest --overwrite``, ``index rebuild`` and ``export``: the
  previous good state is served (or the new one, complete, when the kill came after its publish), and
  ``train --resume`` / a rerun reaches exactly what an uninterrupted run writes;
- a corruption sweep over every file of a run's artifacts folder and of a prepared dataset x (bit flip,
  truncation to half, empty file): one stderr line naming the file, or exactly the clean answer;
- two writers on one run / dataset / export folder; a long-lived ``recommend --users -`` across publishes;
  ``load_dataset`` in a loop while ``ingest --overwrite`` alternates two sources (a mixed load is one whose
  manifest and splits come from different sources);
- the hostile corpus of tests/hostile/ (plus the big files, generated): a non-zero exit, one stderr line,
  within a time bound, no temporary files left.

``python benchmarks/faults.py`` runs the full suite and writes its counts into the "Fault suite" section of
BENCHMARKS.md; ``--quick`` runs fewer tries and writes nothing. Exit status 1 when any invariant failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "hostile"
USER, MOVIE = "1", "2"  # the ids every answer is asked for (the synthetic data has both)
MODES = ("flip", "truncate", "empty")
# train.device=cpu: a resumed run equals the uninterrupted one bit for bit on the CPU, which the kill checks compare;
# on a GPU machine train.device auto is cuda, whose als differs in the last bits from run to run (the movies' half
# from the first sweep on; torch.use_deterministic_algorithms named no op), so every rerun or resume there
# "differed" (session 39, an H200: 89 of 89 kills, and every pair of uninterrupted runs too; cpu: identical)
TRAIN_SETS = ("model.dim=8", "train.epochs=8", "train.patience=100", "train.threads=1", "train.device=cpu")
SEED_A, SEED_B = 7, 42  # the previous good model and the one a killed train was writing


# ------------------------------------------------------------------------------------------ processes

@dataclass
class Out:
    rc: int
    stdout: str
    stderr: str
    seconds: float

    def lines(self) -> list[str]:
        return [x for x in self.stderr.splitlines() if x.strip()]


@dataclass
class Trial:
    """One try of one fault: what was done, whether the invariant held, and what was seen when it did not."""
    kind: str            # "kill:train", "corrupt:run", "two-writers", ...
    what: str            # the file x mode, the kill moment, ...
    ok: bool
    outcome: str = ""    # killed / finished / detected / identical / refused / ...
    detail: str = ""

    def __str__(self) -> str:
        return f"[{self.kind}] {self.what}: {self.outcome}{'' if self.ok else ' FAILED ' + self.detail}"


class Lab:
    """A scratch folder with its own cache and temp folder; runs the embedrec CLI there."""

    def __init__(self, root: Path, in_process: bool = False):
        self.root = Path(root)
        self.in_process = in_process  # cli() through click's CliRunner here (kills always start a process)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "EMBEDREC_CACHE": str(self.root / "cache"), "TMPDIR": str(self.root / "tmp"),
                    "PYTHONHASHSEED": "0"}
        self.env.pop("EMBEDREC_CONFIG", None)

    def argv(self, args) -> list[str]:
        return [sys.executable, "-m", "embedrec", *map(str, args)]

    def cli(self, *args, input: str | bytes | None = None, timeout: float = 300, env: dict | None = None) -> Out:
        if self.in_process and env is None:
            return invoke_in_process([str(a) for a in args], input, self.root / "tmp")
        t = time.perf_counter()
        binary = isinstance(input, bytes)
        try:
            p = subprocess.run(self.argv(args), input=input, capture_output=True, text=not binary, cwd=self.root,
                               env=env or self.env, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            return Out(-999, _text(e.stdout), _text(e.stderr) + f"\n(timed out after {timeout:g} s)",
                       time.perf_counter() - t)
        return Out(p.returncode, _text(p.stdout), _text(p.stderr), time.perf_counter() - t)

    def must(self, *args, **kw) -> Out:
        r = self.cli(*args, **kw)
        if r.rc != 0:
            raise RuntimeError(f"embedrec {' '.join(map(str, args))} failed (rc {r.rc}):\n{r.stderr[-2000:]}")
        return r

    def kill_during(self, args, delay: float) -> tuple[bool, Out]:
        """Start ``embedrec args``, SIGKILL it after ``delay`` seconds; (whether it was still running, output)."""
        t = time.perf_counter()
        p = subprocess.Popen(self.argv(args), cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            p.wait(timeout=delay)
            killed = False
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            killed = True
        out, err = p.communicate()
        return killed, Out(p.returncode, out, err, time.perf_counter() - t)

    # -------------------------------------------------------------------------------------- data and runs
    def source(self, name: str, n_users: int = 200, n_movies: int = 150, n_ratings: int = 6000, seed: int = 1
               ) -> Path:
        from embedrec.data.synth import write_movielens

        d = self.root / name
        if not (d / "ratings.csv").exists():
            write_movielens(d, n_users, n_movies, n_ratings, rank=4, seed=seed)
        return d

    def train_args(self, run: Path, ds: Path, seed: int, *extra) -> list:
        sets = [*TRAIN_SETS, f"train.seed={seed}", f"data.prepared={ds}", f"run.dir={run}", *extra]
        return ["train", "-q", "--format", "json", *[x for s in sets for x in ("--set", s)]]

    def answer(self, run: Path, *extra) -> Out:
        return self.cli("recommend", "--run", run, "--user", USER, "-k", 10, "--format", "tsv", *extra)


def _text(b) -> str:
    if b is None:
        return ""
    return b if isinstance(b, str) else b.decode("utf-8", "replace")


def current(run: Path) -> Path:
    return Path(os.path.realpath(run / "current"))


def copy_tree(src: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, symlinks=True)
    return dest


def arrays(run: Path) -> dict[str, bytes]:
    """The served model: every .npy of the run's current folder, as raw bytes."""
    return {p.name: p.read_bytes() for p in sorted(current(run).glob("*.npy"))}


def epoch_log(path: Path) -> list[dict]:
    """metrics.jsonl without its wall-clock fields (what must be equal between a resumed and a whole run)."""
    if not path.exists():
        return []
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "elapsed")} for r in rows]


def tree_digest(path: Path) -> dict[str, str]:
    """SHA-256 of every file under ``path`` by relative name (a file: of itself, as '.'); {} when absent."""
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    if not path.is_dir():
        return {}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def leftovers(target: Path) -> list[str]:
    """What a writer of ``target`` makes while it works and must not leave: siblings ``.NAME.tmp-*`` /
    ``.NAME.old-*`` / ``.NAME.tmp``, and inside a folder ``.gen-*.tmp`` / ``.artifacts-*.tmp`` / ``.current.*``."""
    pre = f".{target.name}."
    out = [p.name for p in target.parent.iterdir() if p.name.startswith(pre)]
    if target.is_dir():
        out += [f"{target.name}/{p.name}" for p in target.iterdir()
                if p.name.startswith(".") and (p.name.endswith(".tmp") or p.name.startswith(".current."))]
    return sorted(out)


# ------------------------------------------------------------------------------------------ fixtures

@dataclass
class Base:
    """A dataset (source A), the previous good run (seed A) and the uninterrupted reference of the run a
    killed train writes (seed B), with their answers and durations."""
    lab: Lab
    src_a: Path
    src_b: Path
    ds: Path
    ds_b: Path
    run_a: Path
    run_b: Path
    answer_a: str = ""
    answer_b: str = ""
    fp_a: str = ""
    fp_b: str = ""
    seconds: dict = field(default_factory=dict)


def dataset_fingerprint(ds: Path) -> str | None:
    """The fingerprint the dataset's manifest records (flat layout, or DATASET/current -> generation)."""
    for m in (ds / "manifest.json", ds / "current" / "manifest.json"):
        if m.exists():
            return json.loads(m.read_text())["fingerprint"]
    return None


def make_base(lab: Lab) -> Base:
    src_a = lab.source("src-a", 200, 150, 6000, seed=1)
    src_b = lab.source("src-b", 230, 170, 7000, seed=2)
    b = Base(lab, src_a, src_b, lab.root / "ds", lab.root / "ds-b", lab.root / "run-a", lab.root / "run-b")
    b.seconds["ingest"] = lab.must("ingest", "-q", src_b, "-o", b.ds_b).seconds
    lab.must("ingest", "-q", src_a, "-o", b.ds)
    b.fp_a, b.fp_b = dataset_fingerprint(b.ds), dataset_fingerprint(b.ds_b)
    lab.must(*lab.train_args(b.run_a, b.ds, SEED_A))
    b.seconds["train"] = lab.must(*lab.train_args(b.run_b, b.ds, SEED_B)).seconds
    b.answer_a, b.answer_b = lab.must(*_answer_args(b.run_a)).stdout, lab.must(*_answer_args(b.run_b)).stdout
    if b.answer_a == b.answer_b:
        raise RuntimeError("the two seeds gave the same answer; the kill checks could not tell them apart")
    return b


def _answer_args(run: Path) -> list:
    return ["recommend", "--run", run, "--user", USER, "-k", 10, "--format", "tsv"]


# ------------------------------------------------------------------------------------------ kill -9

def moment(rng: random.Random, seconds: float, fractions, i: int) -> float:
    """When to kill: a random share of the uninterrupted duration (or ``fractions[i]`` of it)."""
    return (fractions[i % len(fractions)] if fractions else rng.uniform(0.05, 1.0)) * seconds


def kill_train(base: Base, tries: int, rng: random.Random, fractions=None) -> list[Trial]:
    """kill -9 ``train`` (seed B) on a copy of run A; recommend must serve A (or B, complete, once published);
    ``train --resume`` must then publish exactly B: the same arrays, answer and epoch log."""
    lab, out = base.lab, []
    ref_arrays, ref_log = arrays(base.run_b), epoch_log(current(base.run_b) / "metrics.jsonl")
    for i in range(tries):
        run = copy_tree(base.run_a, lab.root / "kill-train")
        before = current(run)
        delay = moment(rng, base.seconds["train"], fractions, i)
        args = lab.train_args(run, base.ds, SEED_B)
        killed, _ = lab.kill_during(args, delay)
        what = f"try {i + 1}: kill at {delay:.2f} s"
        served = lab.answer(run)
        published = current(run) != before
        want = base.answer_b if published else base.answer_a
        if served.rc != 0 or served.stdout != want:
            out.append(Trial("kill:train", what, False, "served",
                             f"recommend rc {served.rc}: {served.stderr.strip()[:300] or 'another answer'}"))
            continue
        resumed = lab.cli(*args, "--resume")
        how = "resumed"
        if resumed.rc == 1 and len(resumed.lines()) == 1 and "without --resume" in resumed.stderr:
            # killed before its first checkpoint: nothing of this run to resume, or only the previous run's
            # checkpoint (another seed), which --resume refuses in one line; the user trains again
            why = "no checkpoint" if "nothing to resume" in resumed.stderr else \
                f"previous run's checkpoint in {resumed.stderr.split('/checkpoint.pt')[0].rsplit('/', 1)[-1]}/"
            resumed, how = lab.cli(*args), f"resume refused ({why}), rerun"
        problems = []
        if resumed.rc != 0:
            problems.append(f"train --resume rc {resumed.rc}: {resumed.stderr.strip()[-400:]}")
        else:
            if arrays(run) != ref_arrays:
                problems.append("the resumed model's arrays differ from the uninterrupted run's")
            if lab.answer(run).stdout != base.answer_b:
                problems.append("the resumed model answers differently")
            got_log = epoch_log(current(run) / "metrics.jsonl")
            if got_log != ref_log:
                problems.append(f"metrics.jsonl: {len(got_log)} epoch lines, the uninterrupted run has {len(ref_log)}")
            if leftovers(run):
                problems.append(f"left behind after the resume: {', '.join(leftovers(run))}")
        outcome = f"{'killed' if killed else 'finished first'}, served {'new' if published else 'previous'}, {how}"
        out.append(Trial("kill:train", what, not problems, outcome, "; ".join(problems)))
    return out


def kill_ingest(base: Base, tries: int, rng: random.Random, fractions=None) -> list[Trial]:
    """kill -9 ``ingest SRC_B -o DS --overwrite`` over dataset A: DS verifies as A or B (never a mix, never
    missing); a rerun gives exactly B and sweeps what the killed one left."""
    lab, out = base.lab, []
    for i in range(tries):
        ds = copy_tree(base.ds, lab.root / "kill-ds")
        delay = moment(rng, base.seconds["ingest"], fractions, i)
        args = ["ingest", "-q", base.src_b, "-o", ds, "--overwrite"]
        killed, _ = lab.kill_during(args, delay)
        what = f"try {i + 1}: kill at {delay:.2f} s"
        problems = []
        v = lab.cli("verify", ds)
        fp = dataset_fingerprint(ds)
        state = "previous" if fp == base.fp_a else "new" if fp == base.fp_b else f"fingerprint {fp}"
        if v.rc != 0 or fp not in (base.fp_a, base.fp_b):
            problems.append(f"after the kill: verify rc {v.rc} ({v.stderr.strip()[:200]}), dataset {state}")
        again = lab.cli(*args)
        if again.rc != 0:
            problems.append(f"rerun rc {again.rc}: {again.stderr.strip()[:300]}")
        elif dataset_fingerprint(ds) != base.fp_b or lab.cli("verify", ds).rc != 0:
            problems.append("the rerun's dataset differs from an uninterrupted ingest's")
        left = leftovers(ds)
        if left:
            problems.append(f"left behind after the rerun: {', '.join(left)}")
        out.append(Trial("kill:ingest", what, not problems, f"{'killed' if killed else 'finished first'}, {state}",
                         "; ".join(problems)))
    return out


def kill_index(base: Base, tries: int, rng: random.Random, fractions=None) -> list[Trial]:
    """kill -9 ``index rebuild``: the same answer after the kill and after a rerun; the run verifies."""
    lab, out = base.lab, []
    run = copy_tree(base.run_a, lab.root / "kill-index")
    seconds = lab.must("index", "rebuild", "-q", "--run", run).seconds
    for i in range(tries):
        delay = moment(rng, seconds, fractions, i)
        killed, _ = lab.kill_during(["index", "rebuild", "-q", "--run", run], delay)
        what = f"try {i + 1}: kill at {delay:.2f} s"
        problems = []
        served = lab.answer(run)
        if served.rc != 0 or served.stdout != base.answer_a:
            problems.append(f"after the kill recommend rc {served.rc}: {served.stderr.strip()[:300] or 'another answer'}")
        again = lab.cli("index", "rebuild", "-q", "--run", run)
        if again.rc != 0:
            problems.append(f"rerun rc {again.rc}: {again.stderr.strip()[:300]}")
        elif lab.answer(run).stdout != base.answer_a or lab.cli("verify", run).rc != 0:
            problems.append("after the rerun: another answer, or verify fails")
        if leftovers(run):
            problems.append(f"left behind after the rerun: {', '.join(leftovers(run))}")
        out.append(Trial("kill:index rebuild", what, not problems, "killed" if killed else "finished first",
                         "; ".join(problems)))
    return out


def kill_export(base: Base, tries: int, rng: random.Random, fractions=None) -> list[Trial]:
    """kill -9 ``export`` (--to parquet into a folder, --topk-all into a file) over an export of run A: the
    output is A's or B's export, complete; a rerun writes exactly what an uninterrupted export writes."""
    lab, out = base.lab, []
    forms = {"parquet": (["--to", "parquet", "-o"], "exp"), "topk-all": (["--topk-all"], "top.parquet")}
    refs, secs = {}, {}
    for i in range(tries):
        name = list(forms)[i % len(forms)]
        flags, target = forms[name]
        for run, tag in ((base.run_a, "a"), (base.run_b, "b")):  # what uninterrupted exports write
            dest = lab.root / f"ref-{tag}-{target}"
            if (name, tag) not in refs:
                secs[name] = lab.must("export", "-q", "--run", run, *flags, dest).seconds
                refs[name, tag] = tree_digest(dest)
        dest = lab.root / "kill-export" / target
        if dest.parent.exists():
            shutil.rmtree(dest.parent)
        dest.parent.mkdir()
        lab.must("export", "-q", "--run", base.run_a, *flags, dest)
        delay = moment(rng, secs[name], fractions, i)
        args = ["export", "-q", "--run", base.run_b, *flags, dest, "--overwrite"]
        killed, _ = lab.kill_during(args, delay)
        what = f"try {i + 1} ({name}): kill at {delay:.2f} s"
        got = tree_digest(dest)
        state = "previous" if got == refs[name, "a"] else "new" if got == refs[name, "b"] else "partial"
        problems = [] if state != "partial" else [f"after the kill the output is neither export ({sorted(got)})"]
        served = lab.answer(base.run_b)
        if served.stdout != base.answer_b:
            problems.append("recommend answers differently after the kill")
        again = lab.cli(*args)
        if again.rc != 0:
            problems.append(f"rerun rc {again.rc}: {again.stderr.strip()[:300]}")
        elif tree_digest(dest) != refs[name, "b"]:
            problems.append("the rerun's output differs from an uninterrupted export's")
        left = leftovers(dest)
        if left:
            problems.append(f"left behind after the rerun: {', '.join(left)}")
        out.append(Trial("kill:export", what, not problems, f"{'killed' if killed else 'finished first'}, {state}",
                         "; ".join(problems)))
    return out


# ------------------------------------------------------------------------------------------ corruption

def corrupt(path: Path, mode: str, rng: random.Random) -> str:
    """Damage ``path`` in place: flip one random bit, truncate to half, or empty it. Returns what was done."""
    data = bytearray(path.read_bytes())
    if mode == "flip":
        if not data:
            return "flip (empty file)"
        pos, bit = rng.randrange(len(data)), rng.randrange(8)
        data[pos] ^= 1 << bit
        path.write_bytes(bytes(data))
        return f"flip bit {bit} of byte {pos:,} of {len(data):,}"
    if mode == "truncate":
        path.write_bytes(bytes(data[:len(data) // 2]))
        return f"truncate {len(data):,} -> {len(data) // 2:,} bytes"
    path.write_bytes(b"")
    return f"empty ({len(data):,} bytes before)"


def judge(r: Out, clean: str, name: str) -> tuple[bool, str]:
    """The corruption invariant: exactly the clean answer, or a non-zero exit with one stderr line naming
    the file (no traceback)."""
    if r.rc == 0:
        return (True, "identical") if r.stdout == clean else (False, "served a different answer with exit 0")
    lines = r.lines()
    if r.rc < 0 or r.rc > 128 or r.rc == -999:
        return False, f"crashed (rc {r.rc}): {r.stderr.strip()[-300:]}"
    if len(lines) != 1 or "Traceback" in r.stderr:
        return False, f"{len(lines)} stderr lines: {r.stderr.strip()[-400:]}"
    if name not in lines[0]:
        return False, f"the error does not name {name}: {lines[0][:300]}"
    return True, "detected"


def sweep_run(base: Base, modes=MODES, files: list[str] | None = None, rng: random.Random | None = None
              ) -> list[Trial]:
    """Every file of run A's artifacts folder x ``modes``: ``recommend --user``, ``recommend --movie`` and
    ``predict`` give the clean answer or one line naming the file; ``verify`` names it in every case."""
    lab, rng, out = base.lab, rng or random.Random(0), []
    work = lab.root / "corrupt-run"
    copy_tree(base.run_a, work)
    pairs = lab.root / "pairs.csv"
    pairs.write_text(f"user_id,movie_id\n{USER},{MOVIE}\n{USER},3\n")
    commands = {"recommend --user": ["recommend", "--run", work, "--user", USER, "-k", 10, "--format", "tsv"],
                "recommend --movie": ["recommend", "--run", work, "--movie", MOVIE, "-k", 10, "--format", "tsv"],
                "predict": ["predict", "--run", work, "--pairs", pairs, "--format", "tsv"]}
    clean = {k: lab.must(*v).stdout for k, v in commands.items()}
    names = files or sorted(p.name for p in current(work).iterdir() if p.is_file())
    for name in names:
        for mode in modes:
            copy_tree(base.run_a, work)
            path = current(work) / name
            how = corrupt(path, mode, rng)
            for cmd, args in commands.items():
                ok, outcome = judge(lab.cli(*args), clean[cmd], name)
                out.append(Trial("corrupt:run", f"{name} x {mode} ({how}) -> {cmd}", ok, outcome,
                                 "" if ok else outcome))
            v = lab.cli("verify", work)
            ok, outcome = judge(v, "\0", name)  # verify must detect: its clean output is never accepted
            out.append(Trial("corrupt:run", f"{name} x {mode} ({how}) -> verify", ok, outcome, "" if ok else outcome))
    copy_tree(base.run_a, work)
    return out


def sweep_dataset(base: Base, modes=MODES, rng: random.Random | None = None) -> list[Trial]:
    """Every file of the prepared dataset (its current generation) x ``modes``: ``evaluate`` of the run trained
    on it (the dataset is damaged in place and restored after each try) and ``verify`` of the dataset."""
    lab, rng, out = base.lab, rng or random.Random(0), []
    evaluate = ["evaluate", "-q", "--run", base.run_a, "--format", "tsv"]
    clean = lab.must(*evaluate).stdout
    folder = current(base.ds) if (base.ds / "current").is_dir() else base.ds  # the generation's own files
    pristine = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    try:
        for name in sorted(pristine):
            for mode in modes:
                path = folder / name
                how = corrupt(path, mode, rng)
                ok, outcome = judge(lab.cli(*evaluate), clean, name)
                out.append(Trial("corrupt:dataset", f"{name} x {mode} ({how}) -> evaluate", ok, outcome,
                                 "" if ok else outcome))
                ok, outcome = judge(lab.cli("verify", base.ds), "\0", name)
                out.append(Trial("corrupt:dataset", f"{name} x {mode} ({how}) -> verify", ok, outcome,
                                 "" if ok else outcome))
                path.write_bytes(pristine[name])
    finally:
        for name, data in pristine.items():
            (folder / name).write_bytes(data)
    return out


# ------------------------------------------------------------------------------------------ concurrency

def _refused_by_lock(r: Out) -> bool:
    lines = r.lines()
    return r.rc == 75 and len(lines) == 1 and lines[0].startswith("error: another embedrec ") and "(pid " in lines[0]


WRITER_PAIRS = ("train+train", "train+index", "index+index", "ingest+ingest", "export+export")


def two_writers(base: Base, tries: int, rng: random.Random, kinds=WRITER_PAIRS) -> list[Trial]:
    """Two writers of one target started together: each either finishes or is refused in one line naming
    the holder; the target then verifies and holds one writer's complete result (never a mix)."""
    lab, out = base.lab, []
    for i in range(tries):
        kind = kinds[i % len(kinds)]
        gap = rng.uniform(0.0, 0.5)
        if kind == "index+index":
            target = copy_tree(base.run_a, lab.root / "two-run")
            first = second = ["index", "rebuild", "-q", "--run", target]
        elif kind.startswith("train"):
            target = copy_tree(base.run_a, lab.root / "two-run")
            first = lab.train_args(target, base.ds, SEED_B)
            second = first if kind == "train+train" else ["index", "rebuild", "-q", "--run", target]
            gap = rng.uniform(0.0, 0.8) * base.seconds["train"] if kind == "train+index" else gap
        elif kind == "ingest+ingest":
            target = copy_tree(base.ds, lab.root / "two-ds")
            first = ["ingest", "-q", base.src_b, "-o", target, "--overwrite"]
            second = ["ingest", "-q", base.src_a, "-o", target, "--overwrite"]
        else:
            target = lab.root / "two-exp"
            if target.exists():
                shutil.rmtree(target)
            first = ["export", "-q", "--run", base.run_a, "--to", "parquet", "-o", target, "--overwrite"]
            second = ["export", "-q", "--run", base.run_b, "--to", "parquet", "-o", target, "--overwrite"]
        p1 = subprocess.Popen(lab.argv(first), cwd=lab.root, env=lab.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        time.sleep(gap)
        r2 = lab.cli(*second)
        o1, e1 = p1.communicate()
        r1 = Out(p1.returncode, o1, e1, 0.0)
        problems = []
        results = []
        for label, r in (("first", r1), ("second", r2)):
            if r.rc == 0:
                results.append("ok")
            elif _refused_by_lock(r):
                results.append("refused")
            else:
                problems.append(f"{label} writer rc {r.rc}: {r.stderr.strip()[-300:]}")
        if kind.startswith(("train", "index")):
            if lab.cli("verify", target).rc != 0:
                problems.append("the run does not verify afterwards")
            served = lab.answer(target).stdout
            if served not in (base.answer_a, base.answer_b):
                problems.append("the run serves neither model")
            if kind == "index+index" and served != base.answer_a:
                problems.append("the run serves another model after two index rebuilds")
            if kind.startswith("train") and r1.rc == 0 and epoch_log(current(target) / "metrics.jsonl") != epoch_log(
                    current(base.run_b) / "metrics.jsonl"):
                problems.append("the published metrics.jsonl is not the uninterrupted run's (interleaved?)")
        elif kind == "ingest+ingest":
            if lab.cli("verify", target).rc != 0 or dataset_fingerprint(target) not in (base.fp_a, base.fp_b):
                problems.append("the dataset is not one writer's complete result")
        else:
            got = tree_digest(target)
            ok = any(got == tree_digest(lab.root / f"ref-{t}-exp") for t in "ab") if (
                lab.root / "ref-a-exp").exists() else bool(got)
            if not ok:
                problems.append("the export folder is not one writer's complete output")
        out.append(Trial("two-writers", f"try {i + 1} ({kind}, second after {gap:.2f} s)", not problems,
                         " / ".join(results), "; ".join(problems)))
    return out


def publish_copy(run: Path, source_run: Path) -> Path:
    """Publish ``source_run``'s current artifacts into ``run`` through embedrec's own publish (lock, temp folder,
    checksums, atomic swap, pruning): a publish as train makes one, without the training."""
    from embedrec.run_publish import publish

    src = current(source_run)

    def write(tmp: Path) -> None:
        for p in src.iterdir():
            if p.is_file():
                shutil.copy2(p, tmp / p.name)

    return publish(run, write)


def reader_across_publishes(base: Base, publishes: int, via: str = "copy") -> list[Trial]:
    """One ``recommend --users -`` process asked for the same user after each of ``publishes`` publishes that
    alternate models B and A (``via`` "train": real ``train`` runs; "copy": publish_copy): it keeps answering
    from the generation it opened, never fails; a fresh reader after each publish sees the new model."""
    lab = base.lab
    run = copy_tree(base.run_a, lab.root / "reader-run")
    p = subprocess.Popen(lab.argv(["recommend", "--run", run, "--users", "-", "-k", 10, "--format", "tsv",
                                   "--no-header", "--set", "recommend.batch_size=1"]), cwd=lab.root, env=lab.env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    want = "".join(x + "\n" for x in base.answer_a.splitlines()[1:])
    problems, survived = [], 0

    def ask() -> str:
        p.stdin.write(USER + "\n")
        p.stdin.flush()
        return "".join(p.stdout.readline() for _ in range(10))

    try:
        first = ask()
        if first != want:
            problems.append("the reader's first answer is not run A's")
        for i in range(publishes):
            model, seed = (base.run_b, SEED_B) if i % 2 == 0 else (base.run_a, SEED_A)
            if via == "train":
                lab.must(*lab.train_args(run, base.ds, seed))
            else:
                publish_copy(run, model)
            fresh = lab.answer(run).stdout
            if fresh != (base.answer_b if i % 2 == 0 else base.answer_a):
                problems.append(f"publish {i + 1}: a fresh recommend does not see the new model")
            got = ask() if p.poll() is None else ""
            if got != first:
                problems.append(f"publish {i + 1}: the long-lived reader answered "
                                f"{'nothing' if not got else 'differently'} ({p.poll()=})")
                break
            survived += 1
    finally:
        p.stdin.close()
        err = p.stderr.read()
        p.wait(timeout=60)
    if p.returncode != 0:
        problems.append(f"the reader exited {p.returncode}: {err.strip()[-300:]}")
    return [Trial("reader", f"{publishes} publishes via {via}", not problems, f"survived {survived}/{publishes}",
                  "; ".join(problems))]


_INGEST_LOOP = """
import subprocess, sys
srcs, out, stop = sys.argv[1:3], sys.argv[3], sys.argv[4]
import os
i = 0
while not os.path.exists(stop):
    subprocess.run([sys.executable, "-m", "embedrec", "ingest", "-q", srcs[i % 2], "-o", out, "--overwrite"],
                   check=True, stdout=subprocess.DEVNULL)
    i += 1
print(i)
"""


def _signature(ds) -> dict:
    """What tells the two sources apart in every part of a loaded dataset."""
    sig = {"manifest": ds.manifest.get("fingerprint"), "users": ds.n_users, "movies": ds.n_movies}
    for name, s in ds.splits.items():
        sig[name] = (len(s), float(s.rating.sum()), int(s.movie.sum()))
    return sig


def dataset_reader_loop(base: Base, min_loads: int, min_ingests: int = 3) -> list[Trial]:
    """``load_dataset`` in a loop while another process runs ``ingest --overwrite`` alternating sources A and
    B (different sizes) on the same folder: every load is all A or all B. Counts loads, mixed loads and
    errors (a refusal such as 'kept being replaced' is an error, not a mixed load)."""
    from embedrec.data.dataset import load_dataset
    from embedrec.errors import EmbedrecError

    lab = base.lab
    target = copy_tree(base.ds, lab.root / "loop-ds")
    refs = [_signature(load_dataset(base.ds)), _signature(load_dataset(base.ds_b))]
    stop = lab.root / "loop-stop"
    stop.unlink(missing_ok=True)
    p = subprocess.Popen([sys.executable, "-c", _INGEST_LOOP, str(base.src_a), str(base.src_b), str(target),
                          str(stop)], cwd=lab.root, env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    loads = mixed = errors = 0
    seen = {0: 0, 1: 0}
    examples: list[str] = []
    t0 = time.perf_counter()
    try:
        while (loads < min_loads or min(seen.values()) < min_ingests // 2 + 1) and time.perf_counter() - t0 < 900:
            if p.poll() is not None:
                break
            try:
                sig = _signature(load_dataset(target))
            except EmbedrecError as e:
                errors += 1
                if len(examples) < 3:
                    examples.append(f"error: {str(e)[:200]}")
                continue
            loads += 1
            which = [i for i, r in enumerate(refs) if r == sig]
            if which:
                seen[which[0]] += 1
            else:
                mixed += 1
                if len(examples) < 3:
                    parts = {k: [i for i, r in enumerate(refs) if r.get(k) == v] for k, v in sig.items()}
                    examples.append(f"mixed: {parts}")
    finally:
        stop.touch()
        o, e = p.communicate(timeout=120)
    ingests = int(o.strip() or 0) if p.returncode == 0 else -1
    problems = []
    if mixed:
        problems.append(f"{mixed} mixed loads")
    if p.returncode != 0:
        problems.append(f"the ingest loop failed: {e.strip()[-300:]}")
    if loads < min_loads:
        problems.append(f"only {loads} loads")
    what = f"{loads:,} loads during {ingests} ingests ({seen[0]:,} A, {seen[1]:,} B)"
    return [Trial("dataset-loop", what, not problems, f"mixed {mixed} of {loads:,}, errors {errors}",
                  "; ".join(problems + examples))]


# ------------------------------------------------------------------------------------------ hostile corpus

@dataclass
class Case:
    name: str          # the corpus file (tests/hostile/NAME, or generated into the scratch folder)
    args: list         # the command; "{file}" stands for the file, "{out}" for a fresh output folder, "{run}" a run
    expect: str = ""   # a substring of the one stderr line
    stdin: bytes | None = None


def hostile_cases() -> list[Case]:
    """Each hostile file with the command it is fed to. Small files are in tests/hostile/; the big ones
    (a zip bomb, a 10 MB line) are generated by make_generated()."""
    ing = ["ingest", "-q", "{file}", "-o", "{out}"]
    return [
        Case("alias-bomb.yaml", ["config", "-c", "{file}"], "expected a number or 'auto', got list"),
        Case("python-tag.yaml", ["config", "-c", "{file}"], "python"),
        Case("zip-bomb.zip", ing, "would expand to"),
        Case("traversal.zip", ing, "outside the target directory"),
        Case("absolute.zip", ing, "outside the target directory"),
        Case("gzip-named.csv", ing, "gzip-compressed"),
        Case("binary.csv", ing, "binary data, not a text table"),
        Case("huge-id.csv", ing, "column 'user_id'"),
        Case("nan-rating.csv", ing, "rating"),
        Case("inf-rating.csv", ing, "not a finite number"),
        Case("huge-rating.csv", ing, "beyond"),
        Case("long-line.csv", ing, "long-line.csv:"),
        Case("empty.csv", ing, "empty"),
        Case("header-only.csv", ing, "no data rows"),
        Case("field-count.csv", ing, "fields"),
        Case("nul-id.csv", ing, "nul-id.csv:"),
        Case("leading-zero.csv", ing, "leading zero"),
        Case("pairs-binary.csv", ["predict", "--run", "{run}", "--pairs", "{file}"], "cannot decode byte"),
        Case("users-binary.txt", ["recommend", "--run", "{run}", "--users", "{file}"], "cannot decode byte"),
        Case("pairs-huge-id.csv", ["predict", "--run", "{run}", "--pairs", "{file}", "--strict"], "not in the training"),
        Case("pairs-one-field.csv", ["predict", "--run", "{run}", "--pairs", "{file}"], "expected 'user,movie'"),
        Case("users-long-line.txt", ["recommend", "--run", "{run}", "--users", "{file}", "--strict"],
             "the line is longer than 1,048,576 bytes"),
        Case("rated-nan", ["recommend", "--run", "{run}", "--rated", "2=nan,3=4"], "rating"),
        Case("rated-inf", ["recommend", "--run", "{run}", "--rated", "2=inf"], "rating"),
        Case("user-huge-id", ["recommend", "--run", "{run}", "--user", "9" * 30], "not in the training data"),
        # values echoed in an error must be cut to ~80 characters (row 17), not only by the CLI's 2,000 cap
        Case("rated-long", ["recommend", "--run", "{run}", "--rated", "2=" + "9" * 5000 + "x"], "--rated"),
        Case("movie-long", ["recommend", "--run", "{run}", "--movie", "a" * 5000], "no movie"),
        Case("user-features-long", ["recommend", "--run", "{run}", "--user-features", "a" * 5000], "--user-features"),
    ]


GENERATED = ("zip-bomb.zip", "long-line.csv", "users-long-line.txt")  # too big to commit: make_generated()


def make_generated(folder: Path) -> dict[str, Path]:
    """The big hostile files, written at test time rather than committed."""
    folder.mkdir(parents=True, exist_ok=True)
    z = folder / "zip-bomb.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("ml-latest-small/ratings.csv", b"userId,movieId,rating,timestamp\n" + b"\0" * (64 << 20))
        zf.writestr("ml-latest-small/movies.csv", "movieId,title,genres\n1,A (1990),Drama\n")
    long = folder / "long-line.csv"
    long.write_text("user_id,movie_id,rating,timestamp\n1,2,4,100\n3," + "9" * (10 << 20) + ",4,1\n")
    users = folder / "users-long-line.txt"
    users.write_text("1\n" + "7" * (10 << 20) + "\n")
    assert (z.name, long.name, users.name) == GENERATED
    return {p.name: p for p in (z, long, users)}


def run_hostile(lab: Lab, case: Case, run: Path, generated: dict[str, Path], bound: float = 30.0,
                in_process: bool = False) -> Trial:
    """One hostile case: non-zero exit, one stderr line (no traceback) holding ``expect`` and under 300
    characters, within ``bound`` seconds, nothing left in TMPDIR or next to the output folder (the writer's
    lock file ``.embedrec.NAME.lock`` aside). ``in_process``: through click's CliRunner in this process (the
    fast test), else as a process of its own."""
    work = lab.root / "hostile" / case.name
    if work.exists():
        shutil.rmtree(work)
    (work / "tmp").mkdir(parents=True)
    src = generated.get(case.name) or HOSTILE / case.name
    args = [str(a).replace("{file}", str(src)).replace("{out}", str(work / "out")).replace("{run}", str(run))
            for a in case.args]
    if in_process:
        r = invoke_in_process(args, case.stdin, work / "tmp")
    else:
        r = lab.cli(*args, input=case.stdin, timeout=max(bound * 2, 60), env={**lab.env, "TMPDIR": str(work / "tmp")})
    problems = []
    lines = r.lines()
    if r.rc in (0, -999) or r.rc < 0 or r.rc > 128:
        problems.append(f"rc {r.rc}")
    if len(lines) != 1 or "Traceback" in r.stderr:
        problems.append(f"{len(lines)} stderr lines: {shorten_text(r.stderr, 300)}")
    elif len(lines[0]) > 300:
        problems.append(f"a {len(lines[0]):,}-character error line")
    elif case.expect.lower() not in lines[0].lower():
        problems.append(f"'{case.expect}' not in: {lines[0]}")
    if r.seconds > bound:
        problems.append(f"took {r.seconds:.1f} s (bound {bound:g} s)")
    left = [p.name for p in (work / "tmp").iterdir()] + [
        p.name for p in work.iterdir() if p.name != "tmp" and not (p.name.startswith(".embedrec.") and
                                                                   p.name.endswith(".lock"))]
    if left:
        problems.append(f"left behind: {', '.join(sorted(left))}")
    return Trial("hostile", case.name, not problems,
                 f"{'refused' if r.rc > 0 else 'not refused'} (rc {r.rc}, {r.seconds:.1f} s): "
                 f"{lines[0][:160] if lines else ''}", "; ".join(problems))


def invoke_in_process(args: list[str], stdin: bytes | None, tmpdir: Path) -> Out:
    """``embedrec args`` through click's CliRunner, with ``tmpdir`` as the temporary folder."""
    from click.testing import CliRunner

    from embedrec.cli import main as cli_main

    saved = tempfile.tempdir
    tempfile.tempdir = str(tmpdir)
    t = time.perf_counter()
    try:
        r = CliRunner().invoke(cli_main, args, input=stdin)
    finally:
        tempfile.tempdir = saved
    rc = r.exit_code if r.exception is None or isinstance(r.exception, SystemExit) else 99
    err = r.stderr + ("" if rc != 99 else f"\nTraceback: {r.exception!r}")
    return Out(rc, r.stdout, err, time.perf_counter() - t)


def shorten_text(s: str, n: int) -> str:
    s = s.strip().replace("\n", " | ")
    return s if len(s) <= n else s[:n // 2] + " [...] " + s[-n // 2:]


# ------------------------------------------------------------------------------------------ the full suite

def summarise(trials: list[Trial]) -> dict:
    """Counts per kind (and per file x mode for corruptions, per command for kills)."""
    by: dict[str, dict] = {}
    for t in trials:
        key = t.kind
        d = by.setdefault(key, {"tried": 0, "held": 0, "outcomes": {}, "failures": []})
        d["tried"] += 1
        d["held"] += t.ok
        tag = t.outcome.split(" (")[0] if t.kind == "hostile" else t.outcome.split(":")[0] if t.kind.startswith(
            "corrupt") else t.outcome
        d["outcomes"][tag] = d["outcomes"].get(tag, 0) + 1
        if not t.ok:
            d["failures"].append(str(t))
    return by


def corruption_table(trials: list[Trial]) -> list[str]:
    """Rows 'file | mode | tried | detected | identical | failed' for the corruption trials."""
    rows: dict[tuple, list[int]] = {}
    for t in trials:
        if not t.kind.startswith("corrupt"):
            continue
        name, rest = t.what.split(" x ", 1)
        mode = rest.split(" ", 1)[0]
        key = (t.kind.split(":")[1], name, mode)
        r = rows.setdefault(key, [0, 0, 0, 0])
        r[0] += 1
        r[1] += t.ok and t.outcome == "detected"
        r[2] += t.ok and t.outcome == "identical"
        r[3] += not t.ok
    out = ["| folder | file | mode | commands tried | one line naming the file | identical answer | failed |",
           "|---|---|---|---|---|---|---|"]
    for (where, name, mode), (n, det, same, bad) in sorted(rows.items()):
        out.append(f"| {where} | `{name}` | {mode} | {n} | {det} | {same} | {bad} |")
    return out


def write_section(text: str, path: Path = ROOT / "BENCHMARKS.md") -> None:
    """Replace the '## Fault suite' section of BENCHMARKS.md (or add it before '## Not measured')."""
    doc = path.read_text()
    head = "## Fault suite"
    if head in doc:
        start = doc.index(head)
        nxt = doc.find("\n## ", start + len(head))
        doc = doc[:start] + text.rstrip() + "\n" + (doc[nxt:] if nxt >= 0 else "")
    elif "\n## Not measured" in doc:
        i = doc.index("\n## Not measured")
        doc = doc[:i] + "\n" + text.rstrip() + "\n" + doc[i:]
    else:
        doc = doc.rstrip() + "\n\n" + text.rstrip() + "\n"
    path.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer tries; BENCHMARKS.md is not written")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ns = ap.parse_args(argv)
    q = ns.quick
    rng = random.Random(ns.seed)
    t0 = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="embedrec-faults-"))
    trials: list[Trial] = []

    def step(name: str, got: list[Trial]) -> None:
        trials.extend(got)
        bad = [t for t in got if not t.ok]
        print(f"{name}: {len(got) - len(bad)}/{len(got)} held ({time.perf_counter() - t0:.0f} s)", flush=True)
        for t in bad:
            print(f"  {t}", flush=True)

    try:
        base = make_base(Lab(scratch))
        step("kill -9 train", kill_train(base, 3 if q else 10, rng))
        step("kill -9 ingest", kill_ingest(base, 4 if q else 12, rng))
        step("kill -9 index rebuild", kill_index(base, 3 if q else 10, rng))
        step("kill -9 export", kill_export(base, 4 if q else 10, rng))
        step("corruption sweep: run", sweep_run(base, MODES, rng=rng))
        step("corruption sweep: dataset", sweep_dataset(base, MODES, rng=rng))
        step("two writers", two_writers(base, 5 if q else 15, rng))
        step("reader across publishes", reader_across_publishes(base, 10, via="copy" if q else "train"))
        step("dataset reader loop", dataset_reader_loop(base, 200 if q else 1000))
        generated = make_generated(scratch / "generated")
        step("hostile corpus", [run_hostile(base.lab, c, base.run_a, generated) for c in hostile_cases()])
    finally:
        if not ns.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"scratch folder kept: {scratch}")
    minutes = (time.perf_counter() - t0) / 60
    text = report(trials, minutes, ns.seed)
    print(text)
    if not q:
        write_section(text)
    return 0 if all(t.ok for t in trials) else 1


def report(trials: list[Trial], minutes: float, seed: int) -> str:
    by = summarise(trials)
    import platform

    lines = ["## Fault suite", "",
             f"`make faults` (`python benchmarks/faults.py --seed {seed}`), {time.strftime('%Y-%m-%d')}, "
             f"{os.cpu_count()} cores, {minutes:.1f} min; small synthetic data (200 users x 150 movies x 6,000 "
             f"ratings; the second source 230 x 170 x 7,000), the default implicit model at "
             f"{', '.join(TRAIN_SETS)}; every command a separate process ({platform.python_version()}). "
             "`make test` runs a fast subset (tests/test_faults.py).", "",
             "Outcomes: *killed* / *finished first* (a kill moment is a random share of the command's duration "
             "measured once, so some commands finish before it); *previous* / *new*: what was served or found "
             "right after the kill (new only when the kill came after the publish, and then complete); "
             "*resumed* / *resume refused, rerun*: `train --resume` continued, or refused in one line because the "
             "killed run had not written its first checkpoint (only the previous run's, of another seed, was "
             "there) and `train` was run again." + (" Every rerun or resume ended identical to an uninterrupted run."
                                                   if all(t.ok for t in trials if t.kind.startswith("kill")) else ""),
             "",
             "| fault | tried | invariant held | outcomes |", "|---|---|---|---|"]
    names = {"kill:train": "kill -9 `train`, then `recommend` and `train --resume` (exactly the uninterrupted model)",
             "kill:ingest": "kill -9 `ingest --overwrite`, then `verify`/load and a rerun (exactly an uninterrupted ingest)",
             "kill:index rebuild": "kill -9 `index rebuild`, then `recommend` and a rerun",
             "kill:export": "kill -9 `export` (parquet folder, --topk-all file), then a rerun",
             "corrupt:run": "corruption of a run file x (flip, truncate, empty) x (recommend --user, --movie, predict, verify)",
             "corrupt:dataset": "corruption of a dataset file x (flip, truncate, empty) x (evaluate, verify)",
             "two-writers": "two writers at once (train+train, train+index rebuild, index+index, ingest+ingest, "
                            "export+export)",
             "reader": "one `recommend --users -` process across publishes",
             "dataset-loop": "`load_dataset` in a loop under `ingest --overwrite` (alternating two sources)",
             "hostile": "hostile corpus (tests/hostile/ + generated): non-zero exit, one line, time bound, no temp files"}
    for kind, d in by.items():
        outs = "; ".join(f"{k}: {v}" if len(d["outcomes"]) > 1 else k for k, v in sorted(d["outcomes"].items()))
        lines.append(f"| {names.get(kind, kind)} | {d['tried']:,} | {d['held']:,} | {outs} |")
    loop = [t for t in trials if t.kind == "dataset-loop"]
    if loop:
        lines += ["", f"Dataset reader loop: {loop[0].outcome} ({loop[0].what})."]
    lines += ["", "Corruption sweep, per file and mode:", "", *corruption_table(trials)]
    failures = [str(t) for t in trials if not t.ok]
    lines += ["", f"Invariant failures: {len(failures)}" + (":" if failures else ".")]
    lines += [f"- {shorten_text(f, 600)}" for f in failures]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
