"""Beyond one machine, measured here: 1 vs 2 ranks, and the index a 10M-movie catalogue would use.

1. Training (the default als model, one als_reg, no refit) on a synthetic taste-dependent set: one process
   with 1 and 2 threads, and ``torchrun --nproc-per-node 2 -m embedrec train`` (1 thread per rank). Reported:
   train ratings per second of the ALS epochs (metrics.jsonl ``seconds``, validation excluded), scaling
   efficiency (2-rank rate / (2 x 1-rank rate)), whole-command wall, and each rank's peak RSS.
2. ``export --topk-all`` for every user, one process vs 2 ranks (users/s including start-up; outputs compared).
3. FAISS IVF-PQ at ``--index-movies`` 64-d movie vectors with planted low-rank structure: recall@10 against exact
   inner-product search, bytes per movie, build seconds, queries/s.

Each command runs through a small worker (this file with ``--worker``) that calls the CLI in-process and
records its own peak RSS, so torchrun's ranks each report theirs. Prints Markdown (docs/scaling.md and
BENCHMARKS.md quote it) and, with ``--json FILE``, the raw figures.

Usage: python benchmarks/scaling.py [--users N --movies N --ratings N --dim D --epochs E --index-movies N
                                     --skip-train --skip-index --json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREADS = int(os.environ.get("SCALING_INDEX_THREADS", "1"))  # OpenMP spin-waits collapse on a loaded 2-core box


# ------------------------------------------------------------------------------------------------ worker side
def worker(args: list[str]) -> None:
    """Run one embedrec command in this process; append this rank's peak RSS and wall to $SCALING_REPORT."""
    from embedrec.cli import main

    t = time.perf_counter()
    code = 0
    try:
        main(args, standalone_mode=False)
    except SystemExit as e:
        code = int(e.code or 0)
    report = os.environ.get("SCALING_REPORT")
    if report:
        rank = int(os.environ.get("RANK", "0"))
        row = {"rank": rank, "peak_mb": _peak_mb(), "wall": time.perf_counter() - t}
        with open(f"{report}.{rank}", "w") as fh:
            json.dump(row, fh)
    sys.exit(code)


def _peak_mb() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec (ru_maxrss would carry the RSS of
    the process that forked this one, here the benchmark holding the generated data)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def launch(args: list[str], ranks: int, tmp: Path, tag: str) -> dict:
    """One command on ``ranks`` processes (torchrun when 2); returns wall, per-rank peak RSS and stdout."""
    report = tmp / f"report-{tag}"
    env = {**os.environ, "SCALING_REPORT": str(report), "OMP_NUM_THREADS": "1"}
    me = [str(Path(__file__).resolve()), "--worker", *args]
    cmd = [sys.executable, *me] if ranks == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", *me]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stderr[-3000:]}")
    ranks_rows = [json.loads(Path(f"{report}.{r}").read_text()) for r in range(ranks)]
    return {"wall": wall, "ranks": ranks_rows, "stdout": p.stdout, "load": os.getloadavg()}


# ------------------------------------------------------------------------------------------------ training
def train_rows(a, tmp: Path) -> tuple[list[str], dict]:
    from embedrec.data.synth import write_movielens

    src, ds = tmp / "src", tmp / "ds"
    t = time.perf_counter()
    write_movielens(src, a.users, a.movies, a.ratings, rank=16, seed=5, taste=0.5, clusters=64)
    gen = time.perf_counter() - t
    common = ["--set", f"data.prepared={ds}", "-q"]
    subprocess.run([sys.executable, "-m", "embedrec", "ingest", str(src), *common, "--set", "split.valid=0.02",
                    "--set", "split.test=0.02"], check=True, cwd=ROOT, capture_output=True)
    man = json.loads((ds / "manifest.json").read_text())
    n_train = man["split"]["train"]
    train = ["--set", "train.refit=false", "--set", "train.als_reg=0.01", "--set", f"train.epochs={a.epochs}",
             "--set", "train.patience=100", "--set", "train.eval_users=2000", "--set", "train.eval_k=[10]",
             "--set", f"model.dim={a.dim}", "--set", "train.device=cpu", "--format", "json"]
    results = {}
    for name, ranks, threads in (("1 process, 1 thread", 1, 1), ("1 process, 2 threads", 1, 2),
                                 ("torchrun 2 ranks, 1 thread each", 2, 1)):
        run = tmp / f"run-{ranks}-{threads}"
        r = launch(["train", *common, "--set", f"run.dir={run}", "--set", f"train.threads={threads}", *train],
                   ranks, tmp, f"train-{ranks}-{threads}")
        hist = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        epoch_s = [h["seconds"] for h in hist]
        r["epoch_s"] = epoch_s
        r["rate"] = n_train / (sum(epoch_s) / len(epoch_s))
        r["ndcg"] = json.loads(r["stdout"])["splits"]["test"]["model"]["ndcg@10"]
        r["run"] = str(run)
        results[name] = r
    base = results["1 process, 1 thread"]["rate"]
    lines = [f"Data: {a.users:,} users x {a.movies:,} movies, {n_train:,} training interactions (synthetic, "
             f"taste-dependent, generated in {gen:.0f} s), {a.dim} dims, {a.epochs} ALS epochs, als_reg 0.01, "
             "validation NDCG@10 on 2,000 users after each epoch (not in the epoch time).", "",
             "| setup | ALS epoch (mean) | train ratings/s | vs 1 thread | scaling efficiency | whole `train` wall | "
             "peak RSS per rank | test NDCG@10 | load (1/5/15 min) at end |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        n = len(r["ranks"])
        eff = f"{r['rate'] / (n * base) * 100:.0f}%" if n > 1 else ("—" if "1 thread" in name else
                                                                     f"{r['rate'] / (2 * base) * 100:.0f}% (threads)")
        rss = " / ".join(f"{x['peak_mb']:,.0f} MB" for x in sorted(r["ranks"], key=lambda x: x["rank"]))
        lines.append(f"| {name} | {sum(r['epoch_s']) / len(r['epoch_s']):.2f} s | {r['rate']:,.0f} | "
                     f"{r['rate'] / base:.2f}x | {eff} | {r['wall']:.1f} s | {rss} | {r['ndcg']:.4f} | "
                     f"{' / '.join(f'{x:.1f}' for x in r['load'])} |")
    lines.append("")
    return lines, {"n_train": n_train, "results": {k: {kk: vv for kk, vv in v.items() if kk != "stdout"}
                                                   for k, v in results.items()}}


def topk_rows(run: str, tmp: Path, n_users: int) -> tuple[list[str], dict]:
    import pyarrow.parquet as pq

    out = {}
    for ranks in (1, 2):
        path = tmp / f"top10-{ranks}.parquet"
        r = launch(["export", "--set", f"run.dir={run}", "--set", "train.device=cpu", "--topk-all", str(path),
                    "-k", "10", "-q"], ranks, tmp, f"topk-{ranks}")
        out[ranks] = r
    same = pq.read_table(tmp / "top10-1.parquet").equals(pq.read_table(tmp / "top10-2.parquet"))
    lines = ["| `export --topk-all` (top-10, every user) | wall | users/s | peak RSS per rank |", "|---|---|---|---|"]
    for ranks, r in out.items():
        rss = " / ".join(f"{x['peak_mb']:,.0f} MB" for x in sorted(r["ranks"], key=lambda x: x["rank"]))
        lines.append(f"| {'1 process' if ranks == 1 else 'torchrun 2 ranks'} | {r['wall']:.1f} s | "
                     f"{n_users / r['wall']:,.0f} | {rss} |")
    lines += ["", f"The 2-rank file equals the 1-process file: {'yes' if same else 'NO'} (pyarrow Table.equals).",
              ""]
    return lines, {"identical": same, **{f"ranks_{k}": {"wall": v["wall"], "ranks": v["ranks"]}
                                         for k, v in out.items()}}


# ------------------------------------------------------------------------------------------------ index
def vectors(n: int, d: int, seed: int, rank: int = 16):
    """Movie-like vectors: rank-16 structure in d dims (a random map), N(0, 0.05) noise, log-normal norms."""
    import numpy as np

    rng = np.random.default_rng(seed)
    basis = rng.normal(0, 1, (rank, d)).astype(np.float32) / np.sqrt(rank)
    out = np.empty((n, d), np.float32)
    for s in range(0, n, 500_000):
        m = min(500_000, n - s)
        x = rng.normal(0, 1, (m, rank)).astype(np.float32) @ basis + rng.normal(0, 0.05, (m, d)).astype(np.float32)
        x *= np.exp(rng.normal(0, 0.3, (m, 1))).astype(np.float32)
        out[s:s + m] = x
    return out


def index_rows(n: int, d: int = 64, n_queries: int = 2000, codes=("PQ16", "PQ32", "SQ8")) -> tuple[list[str], dict]:
    """IVF-PQ (one coarse quantizer, trained once) with PQ16 and PQ32, alone and with an exact re-rank of its
    top 40 (what IndexRefineFlat does: the full vectors kept beside the codes), at several nprobe."""
    import faiss
    import numpy as np

    faiss.omp_set_num_threads(THREADS)
    X = vectors(n, d, 1)
    Qr = vectors(n_queries, d, 2)
    t = time.perf_counter()
    flat = faiss.IndexFlatIP(d)
    flat.add(X)
    _, truth = flat.search(Qr, 10)
    t_exact = time.perf_counter() - t
    flat_bytes = faiss.serialize_index(flat).size
    del flat
    nlist = 2048 if n >= 1_000_000 else max(16, int(4 * n ** 0.5))
    sample = X[np.random.default_rng(3).choice(n, size=min(n, 64 * nlist), replace=False)]
    t = time.perf_counter()
    km = faiss.Kmeans(d, nlist, niter=20, seed=1, spherical=False)
    km.train(sample)
    t_coarse = time.perf_counter() - t
    _log(f"coarse quantizer {nlist} lists: {t_coarse:.0f} s")
    rows, raw = [], []
    for code in codes:
        t = time.perf_counter()
        quantizer = faiss.IndexFlatIP(d)
        quantizer.add(km.centroids)
        if code == "SQ8":  # one byte per dimension
            index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                  faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFPQ(quantizer, d, nlist, int(code[2:]), 8, faiss.METRIC_INNER_PRODUCT)
        index.train(sample)  # the quantizer holds nlist centroids already: only the codes are trained
        index.add(X)
        build = time.perf_counter() - t + t_coarse
        size = faiss.serialize_index(index).size
        _log(f"{code}: built in {build:.0f} s, {size / n:.1f} B per movie")
        for nprobe in (16, 64, 256):
            index.nprobe = nprobe
            for rerank in ((False, True) if code != "SQ8" else (False,)):
                t = time.perf_counter()
                _, got = index.search(Qr, 40 if rerank else 10)
                if rerank:  # exact scores of the 40 candidates, the best 10 kept
                    exact = np.einsum("qd,qkd->qk", Qr, X[np.maximum(got, 0)])
                    exact[got < 0] = -np.inf
                    got = np.take_along_axis(got, np.argsort(-exact, axis=1)[:, :10], axis=1)
                qs = n_queries / (time.perf_counter() - t)
                recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, truth)]))
                per = size / n + (d * 4 if rerank else 0)
                raw.append({"code": code, "rerank": rerank, "nprobe": nprobe, "recall@10": recall,
                            "bytes_per_movie": per, "build_s": build, "queries_s": qs})
                rows.append(f"| IVF{nlist},{code}{' + exact re-rank of 40' if rerank else ''} | {nprobe} | "
                            f"{recall:.3f} | {per:.0f} B | {per * n / 1e6:,.0f} MB | {build:.0f} s | {qs:,.0f} |")
        del index, quantizer
    head = [f"{n:,} movie vectors x {d} dims (rank-16 structure + noise, log-normal norms), {n_queries:,} user "
            f"queries, recall@10 against exact inner-product search, {THREADS} FAISS thread(s), load "
            f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} at the end. Bytes per movie: the serialized index "
            "(PQ codes, 8-byte ids, centroids spread over the movies), plus the float32 vector where re-ranked. Build: "
            "coarse k-means on 64 x nlist vectors (once) + PQ training + adding every movie.", "",
            "| index | nprobe | recall@10 | bytes per movie | index size | build | queries/s |",
            "|---|---|---|---|---|---|---|",
            f"| IndexFlatIP (exact) | — | 1.000 | {flat_bytes / n:.0f} B | {flat_bytes / 1e6:,.0f} MB | — | "
            f"{n_queries / t_exact:,.0f} |"]
    return head + rows + [""], {"n": n, "d": d, "nlist": nlist, "exact_qs": n_queries / t_exact,
                                "flat_bytes": flat_bytes, "rows": raw}


def _log(msg: str) -> None:
    print(f"[scaling {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main() -> None:
    if "--worker" in sys.argv:
        worker(sys.argv[sys.argv.index("--worker") + 1:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--movies", type=int, default=40_000)
    ap.add_argument("--ratings", type=int, default=10_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--index-movies", type=int, default=2_000_000)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-index", action="store_true")
    ap.add_argument("--index-codes", default="PQ16,PQ32,SQ8", help="FAISS codes to measure (comma-separated)")
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="embedrec-scaling-"))
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
             f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
             f"Python {platform.python_version()}, by `python benchmarks/scaling.py` (`make bench-scaling`); the "
             f"machine is shared: load average at start {' / '.join(f'{x:.1f}' for x in os.getloadavg())}. "
             "No GPU here: every row is CPU (gloo).", ""]
    raw: dict = {}
    if not a.skip_train:
        rows, raw["train"] = train_rows(a, tmp)
        lines += ["### Training: 1 vs 2 ranks", ""] + rows
        run = raw["train"]["results"]["1 process, 1 thread"]["run"]
        rows, raw["topk"] = topk_rows(run, tmp, a.users)
        lines += ["### All-user top-K: 1 vs 2 ranks", ""] + rows
    if not a.skip_index:
        rows, raw["index"] = index_rows(a.index_movies, codes=tuple(a.index_codes.split(",")))
        lines += ["### The index for a big catalogue: FAISS IVF-PQ, recall@10 vs memory", ""] + rows
    print("\n".join(lines))
    if a.json:
        Path(a.json).write_text(json.dumps(raw, indent=2, default=str))


if __name__ == "__main__":
    main()
