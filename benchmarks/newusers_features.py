"""New users on a side-features run, told by demographics, by their first movies, or by both
(`recommend --user-features`, `--liked`, and the two together), on ML-100K.

Protocol (benchmarks/newusers.py's user partition), per seed: the users are split 80/10/10 into known,
validation and test users (newusers.partition); the model is trained on the known users' ratings alone, with
`configs/ml100k-softmax.yaml` (the shipped config of the softmax loss, which side features train with) and the
side features of docs/commands.md's example (`features.movie=[genre, decade]`, `features.user=[age, gender,
occupation]`; `--crosses` adds its three crosses), its validation each known user's latest 10% (the config's
user_time split), then its refit. Each test user tells its earliest N ratings (by time; N in 1, 3, 10); its
later ratings are the targets, NDCG@10 over every movie but the N told. Three lists per user and N:
- features: its age, gender and occupation alone (`recommend --user-features`, Recommender.user_from_features);
- liked: its N movies alone (`recommend --liked`, Recommender.fold_in: the softmax fold-in);
- both: the two at once (`recommend --user-features ... --liked ...`, Recommender.fold_in(features=...)).
Also the most popular movies of the known users. Nothing is tuned: the fold-ins' L2 is the model's
(train.weight_decay_user). Paired per-user differences (each user's averaged over the seeds it is a test user
in, then std / sqrt(users)); within 2 SE is a tie. `--plain`: for reference, the default model (als, no
features) trained on the same known users (its own selection on the same validation rows, and refit), its lists
the most popular movies and the movies alone (`recommend --liked`), paired.

`--told random`: each user tells N of its ratings drawn at random instead of its earliest; `--source DIR` (with
`--plain`): another dataset than ML-100K (a user whose told movies the known users never rated gets the most
popular list in every row: `recommend --liked` refuses such movies).

Usage: python benchmarks/newusers_features.py [--seeds 3] [--crosses | --plain [--source DIR]] [--told time|random]
       [--out FILE.json] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import ranking as R  # noqa: E402  (sets the BLAS thread variables before numpy loads)
from newusers import latest_share, partition  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOLD = (1, 3, 10, 30)
K = 10
FEATURES = ("features.movie=[genre, decade]", "features.user=[age, gender, occupation]")
CROSSES = ("features.crosses=[[user.age, movie.genre], [user.gender, movie.genre], [movie.decade, movie.genre]]",)
LISTS = ("most popular", "features", "liked", "both")
PLAIN_LISTS = ("most popular", "liked", "liked, no prior")


def load(tmp: Path, source: str = "ml-100k"):
    """ML-100K (or ``source``: anything `embedrec ingest` reads) with every rating in one part (no split: the
    protocol makes its own), its users' demographics and its movies' genres and years, through `embedrec ingest`
    (offline: the release's PyPI wheel)."""
    from embedrec.data.dataset import load_dataset

    exe = Path(sys.executable).parent / "embedrec"
    subprocess.run([str(exe), "ingest", source, "-o", str(tmp / "all"), "-q", "--overwrite", "--set",
                    "split.valid=0", "--set", "split.test=0"], check=True, cwd=tmp)
    return load_dataset(tmp / "all")


def known_dataset(full, keep: np.ndarray):
    """full's users and movies tables, its ratings those of ``keep`` (a row mask): each known user's latest 10% as
    valid (split.method user_time, split.valid 0.1, as the shipped config), no test."""
    import dataclasses

    from embedrec.data.dataset import Interactions

    r = full.splits["train"]
    u, i, v, t = r.user[keep], r.movie[keep], r.rating[keep], r.timestamp[keep]
    va = latest_share(u.astype(np.int64), t, full.n_users, 0.1)
    part = lambda m: Interactions(u[m], i[m], v[m], t[m])  # noqa: E731
    empty = Interactions(u[:0], i[:0], v[:0], t[:0])
    manifest = {**full.manifest, "refit": False, "counts": {**full.manifest["counts"], "ratings": int(keep.sum())}}
    return dataclasses.replace(full, manifest=manifest, splits={"train": part(~va), "valid": part(va), "test": empty},
                               fingerprint="", folder=None, hold=None)


def one_seed(seed: int, full, sets: tuple, tmp: Path, plain: bool = False,
             told: str = "time") -> tuple[np.ndarray, dict]:
    """(the test users, {N: {list: per-user NDCG@10}}) of one user partition; ``plain``: the default model's;
    ``told``: each user tells its earliest N ratings ("time") or N drawn at random ("random")."""
    import embedrec as er
    from embedrec.metrics import ndcg_at_k

    r = full.splits["train"]
    u, i, t = r.user.astype(np.int64), r.movie.astype(np.int64), r.timestamp.astype(np.int64)
    known, kinds = partition(u, i, t, full.n_users, seed)
    test_users = np.unique(u[kinds["test"][0] | kinds["test"][1]])
    cfg = er.load_config(None if plain else ROOT / "configs" / "ml100k-softmax.yaml",
                         [f"train.threads={R.THREADS}", f"run.dir={tmp / f'run-{seed}'}", *sets])
    lists = PLAIN_LISTS if plain else LISTS
    t0 = time.perf_counter()
    er.train(known_dataset(full, known), cfg).save()
    R.log(f"seed {seed}: trained in {time.perf_counter() - t0:.0f} s")
    model = er.open(cfg.run.dir, cfg)
    e = model.engine
    draw = np.random.default_rng(1000 + seed)
    Q = np.asarray(e.Q, np.float64)
    bm = np.asarray(e.bm, np.float64)
    row_of = e.movie_rows(full.movies["movie_id"].tolist())[0]  # dataset movie_idx -> the run's rows
    pop = np.bincount(row_of[i[known]], minlength=Q.shape[0]).astype(np.float64)
    users = full.users.set_index("user_idx")
    movie_id = full.movies["movie_id"].to_numpy()
    out: dict[int, dict[str, list]] = {n: {name: [] for name in lists} for n in TOLD}
    for user in test_users:
        mine = np.flatnonzero(u == user)
        mine = mine[np.lexsort((i[mine], t[mine]))] if told == "time" else draw.permutation(mine)  # oldest first
        values = by_features = None
        if not plain:  # ML-100K's demographics
            row = users.loc[user]
            values = {"age": str(int(row["age"])), "gender": row["gender"], "occupation": row["occupation"]}
            by_features = e.user_from_features(values)[0]
        for n in TOLD:
            told_rows, targets = i[mine[:n]], i[mine[n:]]
            liked = movie_id[told_rows].tolist()
            unseen = e.untrained[row_of[told_rows]].all()  # the known users never rated them: recommend --liked
            # refuses it (nothing to fold in), and a service answers with the most popular movies
            vectors = {"liked": None if unseen else e.fold_in(liked=liked)[0]}
            if not plain:
                vectors.update(features=by_features, both=e.fold_in(liked=liked, features=values)[0])
            truth = np.zeros(Q.shape[0], bool)
            truth[row_of[targets]] = True
            for name in lists:
                if unseen and name != "most popular":
                    name_scored = out[n]["most popular"][-1]
                    out[n][name].append(name_scored)
                    continue
                if plain and name == "liked":  # the served list (recommend --liked): the prior included
                    top = e.movie_rows(model.recommend_new(liked=liked, k=K).movie_ids[0])[0]
                else:
                    s = pop.copy() if name == "most popular" else \
                        Q @ np.asarray(vectors["liked" if name == "liked, no prior" else name], np.float64) + bm
                    s[row_of[told_rows]] = -np.inf
                    top = np.argsort(-s, kind="stable")[:K]
                out[n][name].append(ndcg_at_k(truth[top][None, :].astype(float), np.array([truth.sum()]), K)[0])
    return test_users, {n: {name: np.array(v) for name, v in d.items()} for n, d in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--crosses", action="store_true", help="the three crosses of docs/commands.md's example too")
    group.add_argument("--plain", action="store_true", help="the default model without features, for reference")
    ap.add_argument("--told", choices=("time", "random"), default="time",
                    help="each user tells its earliest N ratings (time) or N at random")
    ap.add_argument("--source", default="ml-100k",
                    help="what `embedrec ingest` reads (--plain only: other data has no ML-100K demographics)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="an embedrec config override, after the shipped config and the features")
    a = ap.parse_args()
    sets = (*(() if a.plain else FEATURES), *(CROSSES if a.crosses else ()), *a.sets)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="newusers-features-") as tmp:
        if a.source != "ml-100k" and not a.plain:
            ap.error("--source takes --plain: the features run reads ML-100K's demographics")
        full = load(Path(tmp), a.source)
        seeds = [one_seed(s, full, sets, Path(tmp), a.plain, a.told) for s in range(a.seeds)]
    result = {**summary(seeds, sets, time.perf_counter() - t0, a.plain, a.told), "source": a.source}
    if a.out:
        a.out.write_text(json.dumps(result, indent=1))
    print(markdown(result))


WHICH = {"time": "its earliest N ratings", "random": "N of its ratings drawn at random"}


def summary(seeds: list, sets: tuple, seconds: float, plain: bool = False, told_by: str = "time") -> dict:
    out = {"seeds": len(seeds), "sets": list(sets), "seconds": round(seconds), "test_users_per_seed":
           [int(users.size) for users, _ in seeds], "plain": plain, "told_by": told_by, "told": {}}
    for n in TOLD:
        runs = [{"users": users, "models": {k: {"ndcg": v} for k, v in per[n].items()}} for users, per in seeds]
        means = {k: float(np.mean([r["models"][k]["ndcg"].mean() for r in runs])) for k in runs[0]["models"]}
        if plain:
            out["told"][n] = {"ndcg@10": means, "liked - most popular": R.paired(runs, "liked", "most popular"),
                              "liked - no prior": R.paired(runs, "liked", "liked, no prior")}
            continue
        better = max(("features", "liked"), key=means.get)
        out["told"][n] = {"ndcg@10": means, "both - features": R.paired(runs, "both", "features"),
                          "both - liked": R.paired(runs, "both", "liked"), "better of the two": better,
                          "liked - features": R.paired(runs, "liked", "features")}
    return out


def markdown(result: dict) -> str:
    if result["plain"]:
        lines = [f"{result.get('source', 'ml-100k')} new users on the default model (no features; {', '.join(result['sets']) or 'defaults'}), "
                 f"{result['seeds']} seeds ({result['seconds']} s). Each tells {WHICH[result['told_by']]}.", "",
                 "| N told | most popular | liked, no prior | liked (served) | liked - most popular (SE) | "
                 "liked - no prior (SE) |", "|---|---|---|---|---|---|"]
        for n, r in result["told"].items():
            m, d, e = r["ndcg@10"], r["liked - most popular"], r["liked - no prior"]
            lines.append(f"| {n} | {m['most popular']:.4f} | {m['liked, no prior']:.4f} | {m['liked']:.4f} | "
                         f"{d['diff']:+.4f} ({d['se']:.4f}, {d['verdict']}) | {e['diff']:+.4f} ({e['se']:.4f}, "
                         f"{e['verdict']}) |")
        return "\n".join(lines)
    lines = [f"ML-100K new users on a side-features run (`configs/ml100k-softmax.yaml` with "
             f"{', '.join('`' + s + '`' for s in result['sets'])}), {result['seeds']} seeds of an 80/10/10 user "
             f"partition ({result['seconds']} s); test users per seed: "
             f"{', '.join(map(str, result['test_users_per_seed']))}. Each tells its earliest N ratings; the rest are "
             "the targets.", "",
             "| N told | most popular | features | liked | both | both - features (SE) | both - liked (SE) |",
             "|---|---|---|---|---|---|---|"]
    for n, r in result["told"].items():
        m, bf, bl = r["ndcg@10"], r["both - features"], r["both - liked"]
        lines.append(f"| {n} | {m['most popular']:.4f} | {m['features']:.4f} | {m['liked']:.4f} | {m['both']:.4f} | "
                     f"{bf['diff']:+.4f} ({bf['se']:.4f}, {bf['verdict']}) | {bl['diff']:+.4f} ({bl['se']:.4f}, "
                     f"{bl['verdict']}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
