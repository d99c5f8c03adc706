"""`make bench`: measure embedrec's own figures and write BENCHMARKS.md.

Runs the real CLI as separate processes (what a user runs), on the real MovieLens 100K (through the offline
fallback where GroupLens is unreachable) and on synthetic MovieLens-latest-shaped files. Peers (Surprise,
implicit, EASE; benchmarks/peers.py) run on the same prepared splits, scored by the same metric code.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMBEDREC = [str(Path(sys.executable).parent / "embedrec")]
QUICK = "--quick" in sys.argv


# A small wrapper process runs the command and reports the peak RSS of its own child only (a child forked
# straight from this process would inherit this process's RSS in its accounting).
_WRAP = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
         "sys.stderr.write('\\nPEAK_KB %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
         "sys.exit(p.returncode)")


def run(args: list[str], stdin: str | None = None) -> tuple[float, str, int]:
    """Wall seconds, stdout, and peak RSS (MB) of one embedrec process."""
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _WRAP, *EMBEDREC, *args], input=stdin, capture_output=True,
                       text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"failed: embedrec {' '.join(args)}\n{p.stderr}")
    peak = int(p.stderr.rsplit("PEAK_KB", 1)[1].split()[0])
    return wall, p.stdout, peak // 1024


# the paragraph under the title, in what make bench writes and in the BENCHMARKS.md kept by hand between runs
ABOUT = ("The latest figures, gathered on one page: [docs/quality.md](docs/quality.md). `make bench` rewrites the "
         "sections it measures and keeps the ones other targets write (the explicit bench, the fault suite) and "
         "the log: every section headed with its date (an earlier `make bench` run's figures under theirs), "
         "newest first, with its commands, machine and load.")

NOT_YET = """
## Not measured

- LightFM WARP has no wheel for this Python; `make bench` builds it (`pip install --no-build-isolation lightfm`) and
  the ranking section lists it only when that build succeeded.
- The `recommend speed` latencies include a ~0.02 s Python wrapper used to measure each process's peak memory
  (the cold-start table does not).
"""


def peer_section(tmp: Path, me: dict, mi: dict, t_exp: float) -> list[str]:
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        import peers
    except ImportError as e:  # the bench extra is not installed
        return [f"## Peers\n\nnot run: {e} (make bench installs the bench extra)\n"]
    out = ["## Beside the peers (same splits, same metric code, peers tuned on valid and refit on train+valid)", ""]
    rows = peers.surprise_explicit(tmp / "ml100k")
    te = me["splits"]["test"]["model"]
    sel = me["selection"]
    out += ["Explicit, ML-100K random 80/20:", "", "| model | test RMSE | test MAE | fit seconds (final fit) |",
            "|---|---|---|---|", f"| embedrec MF (dim {me['dim']}, hogwild, refit) | {te['rmse']:.4f} | "
            f"{te['mae']:.4f} | {me['train_seconds']:.2f} |"]
    for r in rows:
        out.append(f"| {r['model']} | {r['rmse']:.4f} | {r['mae']:.4f} | {r['fit_seconds']:.2f} |")
    tuned = next(r for r in rows if "tuned" in r["model"])
    out += ["", f"embedrec's training time, beside the tuned SVD's fit ({tuned['fit_seconds']:.2f} s, train+valid):",
            f"- selection run on train, validating every epoch, up to its best epoch {sel['best_epoch']}: "
            f"{sel['seconds_to_best_epoch']:.2f} s (ratio {sel['seconds_to_best_epoch'] / tuned['fit_seconds']:.2f}); "
            f"the whole selection run ({sel['epochs_run']} epochs, the last ones to confirm no improvement): "
            f"{sel['seconds']:.2f} s",
            f"- refit on train+valid for those {me['best_epoch']} epochs (the model that is tested): "
            f"{me['train_seconds']:.2f} s (ratio {me['train_seconds'] / tuned['fit_seconds']:.2f})",
            f"- the whole `train` command as a fresh process (torch import, selection, refit, evaluation, "
            f"artifacts, index): {t_exp:.1f} s wall", "",
            f"embedrec / tuned SVD, test RMSE ratio: {te['rmse'] / tuned['rmse']:.3f}.", ""]
    rows = peers.implicit_peers(tmp / "ml100k-time")
    ti = mi["splits"]["test"]["model"]
    out += ["Implicit, ML-100K per-user temporal split (latest 20% test):", "",
            "| model | NDCG@10 | Recall@10 | Precision@10 | MAP@10 | HitRate@10 | Coverage@10 | fit seconds |",
            "|---|---|---|---|---|---|---|---|",
            f"| embedrec MF (softmax, dim {mi['dim']}, refit) | {ti['ndcg@10']:.4f} | {ti['recall@10']:.4f} | "
            f"{ti['precision@10']:.4f} | {ti['map@10']:.4f} | {ti['hitrate@10']:.4f} | {ti['coverage@10']:.4f} | "
            f"{mi['train_seconds']:.1f} |"]
    for r in rows:
        out.append(f"| {r['model']} | {r['ndcg@10']:.4f} | {r['recall@10']:.4f} | {r['precision@10']:.4f} | "
                   f"{r['map@10']:.4f} | {r['hitrate@10']:.4f} | {r['coverage@10']:.4f} | {r['fit_seconds']:.1f} |")
    best = max(rows, key=lambda r: r["ndcg@10"])
    out += ["", f"embedrec / best peer ({best['model'].split(' (')[0]}) NDCG@10 ratio: "
            f"{ti['ndcg@10'] / best['ndcg@10']:.3f}.", ""]
    return out


def tune_section(cmd, exp, imp, tmp: Path) -> list[str]:
    out = ["## tune-dims on ML-100K (default sweep: 4..256 and the fourth-root value)", ""]
    timings = {}
    results = {}
    for workers in (2, 1):
        t, o, _ = cmd(["tune-dims", *exp, "--set", f"tune.workers={workers}", "--set", f"tune.dir={tmp}/tune-w{workers}",
                       "--format", "json"])
        timings[workers] = t
        results["explicit"] = json.loads(o)
    t, o, _ = cmd(["tune-dims", *imp, "--set", f"tune.dir={tmp}/tune-imp", "--format", "json"])
    timings["implicit"] = t
    results["implicit"] = json.loads(o)
    out += [f"Whole sweep, explicit: {timings[2]:.0f} s with 2 trials in parallel (1 torch thread each) vs "
            f"{timings[1]:.0f} s one trial at a time (2 threads): ratio {timings[1] / timings[2]:.2f}; so "
            f"`tune.workers` defaults to 2. Implicit sweep: {timings['implicit']:.0f} s.", ""]
    for name, res in results.items():
        m = res["metric"]
        out += [f"{name.capitalize()} ({m}; the choice uses valid only):", "",
                f"| dim | valid {m} | train {m} | test {m} | epochs | seconds | note |", "|---|---|---|---|---|---|---|"]
        for t in res["best_per_dim"]:
            note = ", ".join(x for x, on in (("fourth root", t["dim"] == res["fourth_root"]),
                                             ("chosen", t["dim"] == res["chosen"]["dim"])) if on)
            out.append(f"| {t['dim']} | {t['valid_metric']:.4f} | {t['train_metric']:.4f} | {t['test_metric']:.4f} | "
                       f"{t['epochs']} | {t['seconds']:.1f} | {note} |")
        fr = next(t for t in res["best_per_dim"] if t["dim"] == res["fourth_root"])
        ch = res["chosen"]
        out += ["", f"The fourth-root rule gives {fr['dim']} dimensions: valid {m} {fr['valid_metric']:.4f}, against "
                f"{ch['valid_metric']:.4f} at the chosen {ch['dim']} (train {m} {fr['train_metric']:.4f} vs "
                f"{ch['train_metric']:.4f}: more dimensions fit the training data much closer, and with this "
                "regularisation validation still improves slightly)."]
        out.append("")
    return out


BPR_HOGWILD = "implicit BPR (1 negative), hogwild (per-example SGD kernel, 2 threads)"


def speed_section(cmd, tmp: Path) -> list[str]:
    big = tmp / "speed"
    generate(big, 200_000, 50_000, 5_000_000, rank=16, seed=3)
    base = ["--set", f"data.prepared={tmp}/speed-ds", "-q"]
    cmd(["ingest", str(big), *base, "--set", "split.valid=0", "--set", "split.test=0"])
    out = ["## Training throughput, 200,000 users x 50,000 movies x 64 dims (synthetic, 5M ratings, 2 cores)", "",
           "One epoch's training time (validation excluded); with train.compile the second epoch, after compiling.", "",
           "| variant | ratings/s |", "|---|---|"]
    ex = ["--set", "model.objective=explicit"]  # (a review: these rows had trained the implicit default, als)
    variants = {
        "explicit MSE, sparse SGD, batch 65,536": [*ex, "--set", "train.optimizer=sgd", "--set", "train.lr=1",
                                                   "--set", "train.batch_size=65536"],
        "explicit MSE, sparse SGD, batch 65,536, train.compile": [
            *ex, "--set", "train.optimizer=sgd", "--set", "train.lr=1", "--set", "train.batch_size=65536",
            "--set", "train.compile=true"],
        "explicit MSE, adam (dense), batch 65,536": [*ex, "--set", "train.optimizer=adam", "--set",
                                                     "train.lr=0.003", "--set", "train.batch_size=65536"],
        "explicit MSE, hogwild (per-example SGD kernel, 2 threads)": [
            *ex, "--set", "train.optimizer=hogwild", "--set", "train.lr=0.005", "--set", "model.implicit_terms=false"],
        "explicit MSE with SVD++'s terms (the explicit default), hogwild (svdpp_sgd, 2 threads)": [
            *ex, "--set", "train.optimizer=hogwild", "--set", "train.lr=0.005", "--set", "model.implicit_terms=true"],
        "implicit BPR (1 negative), sparse SGD, batch 65,536": [
            "--set", "model.objective=implicit", "--set", "model.loss=bpr", "--set", "train.optimizer=sgd",
            "--set", "train.lr=1", "--set", "train.batch_size=65536"],
        BPR_HOGWILD: [
            "--set", "model.objective=implicit", "--set", "model.loss=bpr", "--set", "train.optimizer=hogwild",
            "--set", "train.lr=0.05", "--set", "train.weight_decay_user=0.001", "--set",
            "train.weight_decay_movie=0.001"],
    }
    rates = {}
    for name, extra in variants.items():
        run = tmp / f"speed-run-{len(rates)}"
        epochs = 2 if "compile" in name else 1  # the first compiled epoch includes compilation
        cmd(["train", *base, "--set", f"run.dir={run}", "--set", "model.dim=64", "--set", f"train.epochs={epochs}",
             *extra, "--format", "json"])
        row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        man = json.loads((tmp / "speed-ds" / "manifest.json").read_text())
        rates[name] = man["split"]["train"] / row["seconds"]
        out.append(f"| {name} | {rates[name]:,.0f} |")
    try:
        import numpy as np
        import pandas as pd
        import scipy.sparse as sp
        from implicit.bpr import BayesianPersonalizedRanking

        tr = pd.read_parquet(tmp / "speed-ds" / "train.parquet")
        X = sp.csr_matrix((np.ones(len(tr), np.float32), (tr.user_idx, tr.movie_idx)))
        X.sum_duplicates()
        secs = {}
        for iters in (1, 4):  # the difference is its per-epoch time, without its one-off set-up
            model = BayesianPersonalizedRanking(factors=63, iterations=iters, random_state=0)  # + a bias column
            t = time.perf_counter()
            model.fit(X, show_progress=False)
            secs[iters] = time.perf_counter() - t
        per_epoch = (secs[4] - secs[1]) / 3
        r = X.nnz / per_epoch
        ours = json.loads((tmp / f"speed-run-{list(variants).index(BPR_HOGWILD)}" / "metrics.jsonl")
                          .read_text().splitlines()[-1])["seconds"]
        out += [f"| implicit's BPR (64 factors incl. bias, its own 2 threads; per iteration, from 4 minus 1 "
                f"iterations) | {r:,.0f} |", "",
                f"BPR epoch over the same {X.nnz:,} positives: embedrec hogwild {ours:.2f} s, implicit "
                f"{per_epoch:.2f} s; embedrec / implicit throughput ratio: {rates[BPR_HOGWILD] / r:.2f} "
                f"(autograd sparse SGD: {rates['implicit BPR (1 negative), sparse SGD, batch 65,536'] / r:.2f}). "
                f"Including its set-up (CSR conversion), one implicit iteration took {secs[1]:.2f} s.", ""]
    except ImportError:
        out.append("")
    return out


def scale_section(tmp: Path) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).parent / "scale.py"), str(tmp / "scale")]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        return ["## Serving at 1M users x 500K movies", "", f"failed: {p.stderr.strip().splitlines()[-1]}", ""]
    r = json.loads(p.stdout)
    ix = r["index"]
    return ["## Serving at 1,000,000 users x 500,000 movies x 64 dims (synthetic low-rank factors)", "",
            f"`python benchmarks/scale.py DIR` ({time.perf_counter() - t:.0f} s in all): rank-{r['rank']} factors "
            f"placed in {r['dim']} dimensions plus noise (a stand-in for a model trained on low-rank data); "
            f"{r['seen_pairs']:,} seen (user, movie) pairs with power-law activity, excluded from every list.", "",
            f"- artifacts + both HNSW indexes (M={ix['params']['M']}, efConstruction={ix['params']['efConstruction']}, "
            f"efSearch={ix['params']['efSearch']}): {r['seconds_artifacts_and_index']:.0f} s "
            f"(index build {ix['build_seconds']:.0f} s); recall@10 at build {ix['recall@10']:.3f} "
            f"(user -> movie), {ix['similar_recall@10']:.3f} (movie -> movie)",
            f"- `embedrec export --topk-all` for all {r['users']:,} users: {r['seconds_topk_all']:.0f} s "
            f"({r['users_per_second']:,} users/s), peak RSS {r['peak_rss_mb_topk_all']:,} MB",
            f"- recall@10 of the served lists against exact brute force on 1,000 users: "
            f"{r['served_recall@10_vs_exact']:.3f}", ""]


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def generate(path: Path, users: int, movies: int, ratings: int, rank: int, seed: int, taste: float = 0.0) -> float:
    """Write a synthetic MovieLens-latest folder in a child process (so this process stays small: a forked
    child inherits the parent's RSS in its accounting); returns the seconds it took."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from embedrec.data.synth import write_movielens; "
                    f"write_movielens({str(path)!r}, {users}, {movies}, {ratings}, rank={rank}, seed={seed}, "
                    f"taste={taste})"],
                   check=True)
    return time.perf_counter() - t


def _startup_env(tmp: Path) -> dict:
    """The environment the cold-start processes run in: bytecode cached (in a private folder), as an installed
    package has it. With PYTHONDONTWRITEBYTECODE set (as on this project's machines) embedrec's own modules
    would be compiled from source in every process, while numpy's and FAISS's come precompiled from their wheels."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def cold_start(run_dir: Path, tmp: Path, repeats: int = 15) -> dict:
    """Medians of fresh `embedrec recommend --run R --user 196` and `python -c "import numpy, faiss"` processes,
    run alternately (so both see the same load), timed the same way (no wrapper process), after one warm-up
    each; the load average is read before and after."""
    env = _startup_env(tmp)
    procs = {"recommend": [*EMBEDREC, "recommend", "--run", str(run_dir), "--user", "196", "--format", "tsv"],
             "import": [sys.executable, "-c", "import numpy, faiss"],
             "parquet": [*EMBEDREC, "recommend", "--run", str(_as_written_before(run_dir, tmp / "st-run-parquet")),
                         "--user", "196", "--format", "tsv"]}
    times: dict[str, list[float]] = {name: [] for name in procs}
    for i in range(repeats + 1):
        for name, args in procs.items():
            t0 = time.perf_counter()
            subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)
            if i:  # the first round writes the bytecode cache and warms the page cache
                times[name].append(time.perf_counter() - t0)
        if i == 0:
            load0 = os.getloadavg()[0]
    rec, imp = statistics.median(times["recommend"]), statistics.median(times["import"])
    return {"recommend": rec, "import": imp, "ratio": rec / imp, "load": (load0, os.getloadavg()[0]),
            "min_recommend": min(times["recommend"]), "min_import": min(times["import"]),
            "parquet": statistics.median(times["parquet"])}


def _as_written_before(run_dir: Path, dest: Path) -> Path:
    """A copy of the run as runs were written before the serving catalogue (user_ids.npy, movie_ids.npy,
    movies.json): recommend then reads the Parquet files through pyarrow, as every run did before."""
    from embedrec.fsutil.integrity import seal

    if not (dest / "current").exists():
        shutil.copytree(run_dir, dest, symlinks=True)
        folder = Path(os.path.realpath(dest / "current"))
        names = ("user_ids.npy", "movie_ids.npy", "movies.json")
        for name in names:
            (folder / name).unlink()
        m = json.loads((folder / "manifest.json").read_text())
        m["checksums"] = {k: v for k, v in m["checksums"].items() if k not in names}
        (folder / "manifest.json").write_text(json.dumps(seal(m)))
    return dest


def cold_start_rows(results: list[tuple[str, dict]], torch_s: dict | None = None) -> list[str]:
    rows = ["| machine | load average (1 min, before / after) | `recommend --user 196` | `import numpy, faiss` | "
            "ratio | fastest of each | same run read from Parquet (as before) |" + (" `import torch` |" if torch_s else ""),
            "|---|---|---|---|---|---|---|" + ("---|" if torch_s else "")]
    for name, m in results:
        rows.append(f"| {name} | {m['load'][0]:.2f} / {m['load'][1]:.2f} | {m['recommend']:.3f} s | "
                    f"{m['import']:.3f} s | {m['ratio']:.2f}x | {m['min_recommend']:.3f} s / {m['min_import']:.3f} s | "
                    f"{m['parquet']:.3f} s ({m['parquet'] / m['import']:.2f}x) |"
                    + (f" {torch_s[name]:.2f} s |" if torch_s else ""))
    return rows


def _busy(cores: int) -> list:
    return [subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 900: pass"])
            for _ in range(cores)]


def cold_start_section(cmd, tmp: Path) -> list[str]:
    """`bench.py --only-cold-start`: the cold-start table alone, idle and loaded (about a minute)."""
    run_dir = _startup_run(cmd, tmp)
    idle = cold_start(run_dir, tmp)
    busy = _busy(os.cpu_count() or 1)
    try:
        time.sleep(2)
        loaded = cold_start(run_dir, tmp)
    finally:
        for p in busy:
            p.kill()
    return ["## Cold start (ML-100K, default model, fresh processes, medians of 15)", "",
            *cold_start_rows([("as found", idle), ("+1 busy process per core", loaded)]), "", COLD_START_NOTE, "",
            *verify_cost(run_dir, tmp)]


def verify_cost(run_dir: Path, tmp: Path) -> list[str]:
    """What checking files costs: SHA-256 throughput here, and `embedrec verify` of the ML-100K run."""
    from embedrec.fsutil.integrity import VERIFY_ON_OPEN_MAX, sha256_file

    big = tmp / "hash-probe.bin"
    big.write_bytes(os.urandom(256 << 20))
    sha256_file(big)  # page cache warm, as a file just published is
    t0 = time.perf_counter()
    sha256_file(big)
    rate = 256 / (time.perf_counter() - t0)
    big.unlink()
    t_verify, out, _ = run(["verify", str(run_dir)])
    cap = VERIFY_ON_OPEN_MAX >> 20
    return ["### Cost of checking files", "",
            f"- SHA-256 here: {rate:,.0f} MiB/s (256 MiB, warm page cache). Every command hashes the files it opens "
            f"up to {cap} MiB each (at most {cap / rate:.2f} s per such file); larger ones are checked by size on "
            f"open, and hashed too when written, copied or replaced since they were hashed (their stat moved), "
            f"in full by `embedrec verify` and at publish: e.g. 1M users x 64 dims of float32 (244 MiB) "
            f"is {244 / rate:.1f} s.",
            f"- `embedrec verify` of the ML-100K run ({out.strip().split(': ', 1)[-1]}): {t_verify:.2f} s wall as a "
            "fresh process, start-up included.", ""]


COLD_START_NOTE = ("`recommend` reads `user_ids.npy`, `movie_ids.npy` and `movies.json` (not the Parquet files, "
                   "so no pyarrow), checks each against the manifest's SHA-256, and searches the exact index as one "
                   "matrix product (no FAISS). Both commands run with bytecode cached, as an installed package has "
                   "it (`PYTHONDONTWRITEBYTECODE` unset, `PYTHONPYCACHEPREFIX` private), alternately, without "
                   "the wrapper process that measures memory elsewhere in this file. The last column serves the same "
                   "run with those three files removed, as a run written before them: `recommend` then reads "
                   "`users.parquet` and `movies.parquet` through pyarrow. Loaded = one busy-looping process per core "
                   "beside the command.")


def _startup_run(cmd, tmp: Path) -> Path:
    ds, run_dir = tmp / "st-ds", tmp / "st-run"
    common = ["--set", f"data.prepared={ds}", "--set", f"run.dir={run_dir}", "-q"]
    if not (run_dir / "current").exists():
        cmd(["ingest", "ml-100k", *common])
        cmd(["train", *common])
    return run_dir


def startup_threads_section(cmd, tmp: Path) -> list[str]:
    """Cold start of `recommend` beside `import numpy, faiss` (see cold_start), and `train` (ML-100K defaults)
    at train.threads 1 / 2 / auto (0), on an idle machine and with one busy process per core; each row's
    reference in the same run."""
    ds, run_dir = tmp / "st-ds", _startup_run(cmd, tmp)
    common = ["--set", f"data.prepared={ds}", "--set", f"run.dir={run_dir}", "-q"]
    cores = os.cpu_count() or 1

    def measure() -> dict:
        out = {"cold": cold_start(run_dir, tmp)}
        torch_imp = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import torch"], check=True)
            torch_imp.append(time.perf_counter() - t0)
        out["torch"] = statistics.median(torch_imp)
        for threads in (1, 2, 0):
            walls = [cmd(["train", *common, "--set", f"train.threads={threads}",
                          "--set", f"run.dir={tmp / f'st-run-{threads}'}"])[0] for _ in range(3)]
            out[f"train{threads}"] = statistics.median(walls)
        return out

    idle = measure()
    busy = _busy(cores)
    try:
        time.sleep(2)
        loaded = measure()
    finally:
        for p in busy:
            p.kill()
    rows = ["## Start-up and threads (ML-100K, fresh processes, medians)", "",
            f"Loaded = {cores} busy-looping processes (one per core) running beside the command.", "",
            "### Cold start", "",
            *cold_start_rows([("idle", idle["cold"]), ("loaded", loaded["cold"])],
                             {"idle": idle["torch"], "loaded": loaded["torch"]}), "", COLD_START_NOTE, "",
            *verify_cost(run_dir, tmp),
            "### Threads", "",
            "| machine | `train` threads=1 | threads=2 | threads=auto |", "|---|---|---|---|"]
    for name, m in (("idle", idle), ("loaded", loaded)):
        rows.append(f"| {name} | {m['train1']:.1f} s | {m['train2']:.1f} s | {m['train0']:.1f} s |")
    return rows + [""]


def ranking_section() -> list[str]:
    """The default ranking model beside tuned implicit ALS, BPR, EASE and LightFM on three protocols
    (benchmarks/ranking.py: the same rows for every model, per-user paired differences)."""
    args = [sys.executable, str(Path(__file__).parent / "ranking.py"), *(["--quick"] if QUICK else [])]
    p = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{p.stderr[-2000:]}")
    return ["## Ranking: the default model beside tuned peers (benchmarks/ranking.py)", "", p.stdout.strip(), ""]


def newusers_section() -> list[str]:
    """New users folded in (`recommend --liked`) beside EASE and implicit ALS's own new-user solve, on held-out
    users of ML-100K (benchmarks/newusers.py)."""
    args = [sys.executable, str(Path(__file__).parent / "newusers.py"), *(["--seeds", "2"] if QUICK else [])]
    p = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{p.stderr[-2000:]}")
    return ["## New users: fold-in beside peers (benchmarks/newusers.py)", "", p.stdout.strip(), ""]


def scaling_section() -> list[str]:
    """Beyond one machine: 1 vs 2 ranks (torchrun) for training and all-user top-K, peak RSS per rank, and FAISS
    IVF-PQ recall@10 vs memory at 2M movies (benchmarks/scaling.py; docs/scaling.md scales the figures)."""
    args = [sys.executable, str(Path(__file__).parent / "scaling.py")]
    if QUICK:
        args += ["--users", "50000", "--movies", "10000", "--ratings", "1000000", "--index-movies", "200000"]
    p = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{p.stderr[-2000:]}")
    return ["## Beyond one machine (benchmarks/scaling.py)", "", p.stdout.strip(), ""]


def full_scale_section(cmd, tmp: Path) -> list[str]:
    """1M users x 500K movies x 100M taste-dependent interactions through the real commands: ingest, the default
    ranking model (als) with validation and early stopping, index, top-10 for everyone; NDCG@10 beside
    most-popular on a sample of users."""
    big = tmp / "full"
    gen = generate(big, 1_000_000, 500_000, 100_000_000, rank=16, seed=11, taste=0.5)
    size = (big / "ratings.csv").stat().st_size / 1e9
    ds, run = tmp / "full-ds", tmp / "full-run"
    common = ["--set", f"data.prepared={ds}", "--set", f"run.dir={run}", "-q"]
    t_ing, _, m_ing = cmd(["ingest", str(big), *common, "--set", "split.valid=0.01", "--set", "split.test=0.01"])
    man = json.loads((ds / "manifest.json").read_text())
    epochs = int(os.environ.get("EMBEDREC_FULL_EPOCHS", "6"))
    t_tr, out, m_tr = cmd(["train", *common, "--set", "model.dim=64", "--set", f"train.epochs={epochs}",
                           "--set", "train.refit=false", "--set", "train.patience=2",
                           "--set", "train.eval_k=[10]", "--set", "train.eval_users=10000",
                           "--set", "index.ef_construction=80", "--format", "json"])
    metrics = json.loads(out)
    hist = [json.loads(x) for x in (run / "current" / "metrics.jsonl").read_text().splitlines()]
    rman = json.loads((run / "current" / "manifest.json").read_text())
    ix = rman["index"]
    test = metrics["splits"]["test"]
    t_top, _, m_top = cmd(["export", *common, "--topk-all", str(tmp / "full-top10.parquet"), "-k", "10"])
    n_users = man["counts"]["users"]
    per_epoch = sum(h["seconds"] for h in hist) / max(len(hist), 1)
    return ["## 1M users x 500K movies x 100M interactions, end to end (synthetic, taste-dependent, 2 cores, 24 GB)",
            "",
            f"Generated {man['cleaning']['rows_read']:,} interactions ({size:.1f} GB CSV; half of each user's draws "
            f"follow taste clusters, half popularity) in {gen:.0f} s.", "",
            "| step | wall | peak RSS |", "|---|---|---|",
            f"| `ingest` ({man['counts']['ratings']:,} ratings after cleaning) | {t_ing:.0f} s | {m_ing:,} MB |",
            f"| `train`: default model (als), 64 dims, {len(hist)} epochs ({per_epoch:.0f} s each, "
            f"{man['split']['train'] / per_epoch:,.0f} interactions/s) with valid NDCG@10 on 10,000 users each "
            f"epoch, best epoch {metrics['best_epoch']}, + test metrics + artifacts + index | {t_tr:.0f} s | "
            f"{m_tr:,} MB |",
            f"| of which the HNSW index build (both indexes, efSearch raised to {ix['params'].get('efSearch')}) | "
            f"{ix['seconds_with_recall_check']:.0f} s | |",
            f"| `export --topk-all`, top-10 for all {n_users:,} users | {t_top:.0f} s "
            f"({n_users / t_top:,.0f} users/s) | {m_top:,} MB |", "",
            f"Test NDCG@10 on a seeded sample of 10,000 users: model {test['model']['ndcg@10']:.4f}, most-popular "
            f"{test['most_popular']['ndcg@10']:.4f} (recall@10 {test['model']['recall@10']:.4f} vs "
            f"{test['most_popular']['recall@10']:.4f}; coverage@10 {test['model']['coverage@10']:.4f} vs "
            f"{test['most_popular']['coverage@10']:.4f}).", "",
            f"Index recall@10 against exact search at build: {ix['recall@10']:.3f} (user -> movie), "
            f"{ix['similar_recall@10']:.3f} (movie -> movie).", ""]


# sections other make targets write into BENCHMARKS.md: make bench keeps them as they are
KEPT = ("## Fault suite", "## Explicit ratings")
# and the log: every section headed with its date ("## 2026-12-02 (session 22): ..."), which docs and code cite,
# and an earlier make bench's figures ("## Measured 2026-11-24 ..." and the sections after it, kept under it)
LOG_HEAD = re.compile(r"^## (Measured )?\d{4}-\d{2}-\d{2}\b", re.M)
START = re.compile(r"^<!-- [\w-]+:start -->$")  # a section's own marker, on the line above its heading


def _sections(doc: str) -> list[tuple[str, str]]:
    """(heading line, text) of each '## ' section of ``doc``: from its heading, or the marker line right above it
    (<!-- x:start -->), to the next section's start; the text before the first heading is left out."""
    lines = doc.split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("## ")]
    starts = [i - 1 if i and START.match(lines[i - 1]) else i for i in starts]
    out = []
    for k, i in enumerate(starts):
        body = lines[i:starts[k + 1] if k + 1 < len(starts) else len(lines)]
        head = body[1] if body[0].startswith("<!--") else body[0]
        out.append((head, "\n".join(body).rstrip()))
    return out


def kept_sections(doc: str) -> list[str]:
    """The sections of ``doc`` make bench does not write, in their order in ``doc``: those another target owns
    (KEPT) and the log (LOG_HEAD). The sections after a "## Measured <date>" heading (an earlier make bench's
    figures) go under it, a level down, up to the next kept or dated one or "## Not measured"."""
    out: list[str] = []
    under = False
    for head, body in _sections(doc):
        if head.startswith(KEPT) or LOG_HEAD.match(head):
            out += [body, ""]
            under = head.startswith("## Measured ")
        elif under and not head.startswith("## Not measured"):
            out[-2] += "\n\n" + re.sub(r"^(#{2,5}) ", r"#\1 ", body, flags=re.M)
        else:
            under = False
    return out


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="embedrec-bench-"))
    lines = []
    cmds = []

    def cmd(args, stdin=None):
        cmds.append("embedrec " + " ".join(args))
        return run(args, stdin)

    if "--only-full-scale" in sys.argv:  # the long end-to-end run alone (about 20 minutes here)
        print("\n".join(full_scale_section(cmd, tmp)))
        return
    if "--only-cold-start" in sys.argv:  # recommend beside import numpy, faiss, idle and loaded (about a minute)
        print("\n".join(cold_start_section(cmd, tmp)))
        return
    if "--only-startup" in sys.argv:  # cold start and threads, idle and loaded (a few minutes)
        print("\n".join(startup_threads_section(cmd, tmp)))
        return
    if "--only-scaling" in sys.argv:  # 1 vs 2 ranks and the IVF-PQ index (about 20 minutes here)
        print("\n".join(scaling_section()))
        return
    if "--only-speed" in sys.argv:  # the training-throughput table alone (a few minutes)
        print("\n".join(speed_section(cmd, tmp)))
        return

    # quality on ML-100K, shipped configs (chosen on validation data only)
    exp = ["-c", "configs/ml100k-explicit.yaml", "--set", f"data.prepared={tmp}/ml100k",
           "--set", f"run.dir={tmp}/exp", "-q"]
    imp = ["-c", "configs/ml100k-implicit.yaml", "--set", f"data.prepared={tmp}/ml100k-time",
           "--set", f"run.dir={tmp}/imp", "-q"]
    cmd(["ingest", "ml-100k", *exp[:4], "-q"])
    cmd(["ingest", "ml-100k", *imp[:4], "-q"])
    t_exp, out, _ = cmd(["train", *exp, "--format", "json"])
    me = json.loads(out)
    t_imp, out, _ = cmd(["train", *imp, "--format", "json"])
    mi = json.loads(out)
    te, ti = me["splits"]["test"], mi["splits"]["test"]
    lines += ["## Quality on MovieLens 100K (real data)", "",
              "Explicit: random split 70/10/20 (seed 42), epochs chosen on valid, refit on train+valid (80%), "
              "tested on the untouched 20%.", "",
              "| model | test RMSE | test MAE |", "|---|---|---|"]
    for name in ("model", "biases", "global_mean"):
        lines.append(f"| {'embedrec MF' if name == 'model' else name} | {te[name]['rmse']:.4f} | {te[name]['mae']:.4f} |")
    lines += ["", f"Best epoch {me['best_epoch']} (valid RMSE {me['selection']['valid']:.4f}), dim {me['dim']}; "
              f"whole `train` (selection + refit + index) {t_exp:.1f} s wall.", "",
              "Implicit: per-user temporal split (each user's latest 20% of ratings is test, the 10% before it "
              "valid), every rating a positive, the shipped implicit config (the default als model), refit on "
              "train+valid.", "",
              "| model | NDCG@10 | Recall@10 | Precision@10 | MAP@10 | HitRate@10 | Coverage@10 |",
              "|---|---|---|---|---|---|---|"]
    for name in ("model", "most_popular"):
        v = ti[name]
        lines.append(f"| {'embedrec MF (als)' if name == 'model' else name} | {v['ndcg@10']:.4f} | "
                     f"{v['recall@10']:.4f} | {v['precision@10']:.4f} | {v['map@10']:.4f} | {v['hitrate@10']:.4f} | "
                     f"{v['coverage@10']:.4f} |")
    lines += ["", f"Best epoch {mi['best_epoch']} (valid NDCG@10 {mi['selection']['valid']:.4f}); whole `train` "
              f"{t_imp:.1f} s wall.", ""]

    # recommend speed
    one, imports = [], []
    for _ in range(7):  # interleaved, so both see the same load
        one.append(cmd(["recommend", *exp, "--user", "196", "--format", "tsv"])[0])
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import numpy, faiss"], check=True)
        imports.append(time.perf_counter() - t0)
    reps = 100
    ids = "\n".join(str(u) for u in range(1, 944) for _ in range(reps)) + "\n"
    t_many, out, _ = cmd(["recommend", *exp, "--users", "-", "--format", "tsv"], stdin=ids)
    n_users = 943 * reps
    assert len(out.splitlines()) == n_users * 10 + 1
    lines += ["## recommend speed (ML-100K, exact index)", "",
              f"- `recommend --user 196` as a fresh process: median {statistics.median(one):.2f} s wall "
              f"(min {min(one):.2f}, max {max(one):.2f}, 7 runs); `python -c \"import numpy, faiss\"` in the same "
              f"runs: median {statistics.median(imports):.2f} s, so start-up is "
              f"{statistics.median(one) / statistics.median(imports):.2f}x that import.",
              f"- top-10 for {n_users:,} user ids through `--users -` (TSV): {t_many:.2f} s wall including start-up, "
              f"{n_users / t_many:,.0f} users/s ({n_users / (t_many - statistics.median(one)):,.0f} users/s after start-up).",
              ""]

    # peers on the same prepared splits
    lines += startup_threads_section(cmd, tmp)
    lines += ranking_section()
    lines += newusers_section()
    lines += peer_section(tmp, me, mi, t_exp)

    # tune-dims: the default sweep, two ways of using the 2 cores
    lines += tune_section(cmd, exp, imp, tmp)

    # side features: ablation and cold start
    if not QUICK:
        sys.path.insert(0, str(Path(__file__).parent))
        import features_bench

        lines += features_bench.ablation(tmp) + features_bench.cold_start(tmp)

    # training throughput at 200K users x 50K movies x 64 dims
    if not QUICK:
        lines += speed_section(cmd, tmp)

    # ingest at scale
    if not QUICK:
        big = tmp / "big"
        gen = generate(big, 162_000, 59_000, 25_000_000, rank=8, seed=0)
        size = (big / "ratings.csv").stat().st_size / 1e6
        t_ing, _out, peak = cmd(["ingest", str(big), "-o", str(tmp / "big-ds"), "-q", "--format", "json"])
        man = json.loads((tmp / "big-ds" / "manifest.json").read_text())
        lines += ["## ingest at ML-25M size (synthetic, MovieLens-latest layout)", "",
                  f"- {man['cleaning']['rows_read']:,} ratings, {size:,.0f} MB ratings.csv (162,000 users x 59,000 "
                  f"movies; generated in {gen:.0f} s): `ingest` {t_ing:.1f} s wall, peak RSS {peak:,} MB.", ""]
    # serving at 1M users x 500K movies
    if not QUICK:
        lines += scale_section(tmp)
    if not QUICK:
        lines += full_scale_section(cmd, tmp)
    lines += scaling_section()
    head = ["# Benchmarks", "", ABOUT, "", f"## Measured {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC by `make bench`", "",
            f"On {platform.machine()} {cpu_model()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, by `make bench` "
            f"(`python benchmarks/bench.py{' --quick' if QUICK else ''}`). Commands run:", "", "```"]
    head += sorted(set(cmds)) + ["```", ""]
    out_path = ROOT / ("BENCHMARKS.quick.md" if QUICK else "BENCHMARKS.md")
    kept = kept_sections(out_path.read_text() if out_path.exists() else "")
    text = "\n".join(head + lines + kept) + NOT_YET
    out_path.write_text(text.rstrip() + "\n")
    print(text)


if __name__ == "__main__":
    main()
