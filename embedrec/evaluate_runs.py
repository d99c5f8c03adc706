"""A saved run evaluated on its dataset: open the run, its factors as served (updates, added users), then evaluate.evaluate_factors."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from embedrec.evaluate import added_pairs, check_ks, evaluate_factors
from embedrec.evaluate_paired import (
    finish_per_user,
)
from embedrec.sparse import isin

log = logging.getLogger("embedrec.evaluate")

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.data.dataset import Dataset


def evaluate_run(run_dir, dataset_dir=None, split: str = "test", ks=(10, 20), device=None, moved_to=None) -> dict:
    """Metrics of the trained run at ``run_dir`` (from its artifacts) and the baselines on one split, by path: the
    run opened and :func:`evaluate_opened` (which ``Model.evaluate``, and so ``embedrec evaluate``, calls for an
    open model); ``ks`` None: the run's own train.eval_k, what train printed; ``device`` (train.device) cuda scores
    on the GPU."""
    from embedrec.run import load_run
    from embedrec.run_inputs import run_eval_k

    if ks is not None:
        ks = check_ks(ks)
    run = load_run(run_dir)
    if ks is None:
        ks = run_eval_k(run)
    return evaluate_opened(run, dataset_dir, split, ks, device, moved_to)


def evaluate_opened(run, dataset_dir=None, split: str = "test", ks=(10, 20), device=None, moved_to=None,
                    per_user: bool = False, lists=None, metrics=None, progress: bool = False) -> dict:
    """As evaluate_run, for a run already opened (``embedrec.run.Run``); ``lists``: called with (the result, the
    dataset) before the paired differences are taken (``Model.evaluate`` scores other runs and other recommenders'
    lists there); ``per_user`` and ``metrics``: :func:`finish_per_user`'s; ``progress``: a bar over the users of
    each ranking pass (the model's, the most-popular baseline's)."""
    from embedrec.run_inputs import run_dataset

    check_user_ids(run)  # the run's own damage, before its dataset is looked for
    ds = run_dataset(run, dataset_dir, moved_to)  # refuses a dataset other than the one the run was trained on
    f = run_factors(run)
    result = evaluate_factors(f, run.explicit, ds, split, ks, bool(run.manifest.get("refit")), f"run '{run.path}'",
                              device, progress)
    updated = updated_rows(run, ds, split, run_seen=f.get("run_seen"))
    if updated is not None:
        result["updates"] = updated
        keys = added_pairs(f["run_seen"], ds)
        if (keys < np.int64(ds.n_users) * np.int64(max(ds.n_movies, 1))).any():  # the dataset's users told some
            result["excluded"] += "+updates"  # (left out as recommend leaves them; an added user ranks in no split)
    served = served_index(run)
    if served is not None:
        result["served_index"] = served
    if lists is not None:
        lists(result, ds)  # the caller's, a layer above: other runs and lists scored on the same dataset
    return finish_per_user(result, split, per_user, metrics)


def served_index(run) -> dict | None:
    """{"kind", "recall@10"} of the approximate index ``run`` serves through (hnsw, ivf, ...; its recall of the exact
    lists when built), whose lists can differ a little from its row's, which ranks every movie exactly; None for a
    flat index. The model's, and each --against run's (``evaluate_against.score_against``)."""
    index = run.manifest.get("index") or {}
    if index.get("kind", "flat") == "flat":
        return None
    return {"kind": index["kind"], "recall@10": index.get("recall@10")}


def check_user_ids(run) -> None:
    """Refuse a run whose user ids hold an id twice, as every lookup of them does (``IdMap.check_unique``, the line
    recommend, export and verify give), though evaluate looks none up: it ranks the dataset's users by row (session
    51's red team: a re-sealed run's user_ids.npy holding an id twice was scored). ``evaluate_opened`` checks the
    model's run, ``evaluate_against.open_against`` each other run."""
    from embedrec.serve.catalogue import Catalogue

    Catalogue.from_run(run).users.check_unique()


def run_factors(run) -> dict:
    """A run's factors as :func:`evaluate_factors` takes them (train.factors' dict), of its dataset's users (the
    users update-users added come after them, in no split), its arrays checked as ``recommend`` checks them and
    for non-finite values, and its ``global_mean``."""
    from embedrec.run_updates import trained_movies, trained_users
    from embedrec.verify import check_finite, check_served_arrays

    trained = trained_users(run.manifest)  # its dataset's users: update-users' added ones come after them
    movies = trained_movies(run.manifest)  # ... and its movies (update-users --new-movies' after them: in no split)
    f = {name: run.array(name) for name in ("user_factors", "movie_factors", "user_bias", "movie_bias")}
    check_served_arrays(run, f["user_factors"], f["movie_factors"],  # as recommend does (a red team: IndexError)
                        biases=(f["user_bias"], f["movie_bias"]))
    for name in ("user_factors", "user_bias"):  # the dataset's users: no split holds a user update-users added
        if f[name] is not None:
            f[name] = f[name][:trained]
    for name in ("movie_factors", "movie_bias"):  # the dataset's movies alone are ranked: a split's movie rows
        if f[name] is not None:                   # index them (the lists of the served model list added ones too)
            f[name] = f[name][:movies]
    for name in ("user_factors", "movie_factors", "user_bias", "movie_bias"):  # read whole here anyway: a NaN row
        a = f[name]  # scored as the last of every list (a review: metrics, no error); a model without biases has none
        if a is not None and np.asarray(a).dtype.kind == "f":
            check_finite(run, np.asarray(a), lambda i, name=name: f"{name}.npy holds values that are")
    f["global_mean"] = run.manifest.get("global_mean", 0.0)
    from embedrec.run_updates import updates_said

    if updates_said(run.manifest) is not None:  # the pairs update-users added: score_factors leaves them out
        f["run_seen"] = (run.array("seen_indptr"), run.array("seen_indices"))
    return f


def updated_rows(run, ds: Dataset, split: str, whose: str = "this run's", run_seen=None) -> dict | None:
    """Where update-users re-solved the run's users (its manifest's ``updates``): {"updates", "users": the
    dataset's users they re-solved (distinct, where the records count them: run_updates.updates_summary), "users_added"
    (in no split), "ratings": what the updates solved with, "rows_seen": how many of ``split``'s rows are among the
    pairs they added} (those pairs: the run's seen pairs beyond the dataset's own, train, valid and rated below
    data.min_rating), said in a warning where there are any, since the model has seen those rows and its figures
    on them are not held out (a note otherwise: the figures are of the updated vectors); None for a run without
    updates. ``whose``: the run as those lines name it."""
    from embedrec.run_updates import updates_said, updates_summary

    said = updates_said(run.manifest)
    if said is None:
        return None
    n = np.int64(max(ds.n_movies, 1))
    added = added_pairs(run_seen if run_seen is not None else (run.array("seen_indptr"), run.array("seen_indices")),
                        ds)
    part = ds.splits[split]
    seen = int(isin(part.user.astype(np.int64) * n + part.movie, added).sum()) if added.size else 0
    got = updates_summary(run.manifest)
    out = {"updates": got["updates"], "users": got["users"], "users_added": got["users_added"],
           "ratings": got["ratings"], "rows_seen": seen}
    if seen:
        log.warning("%s of the %s split's %s rows are ratings %s users were re-solved with after training "
                    "(%s): the model has seen them, and its lists leave them out as recommend does (the users told "
                    "them), so they count as misses and its figures are below held-out ones; evaluate a run trained "
                    "without them (or keep the held-out ratings out of update-users' files)", f"{seen:,}", split,
                    f"{len(part):,}", whose, said)
    else:
        log.info("%s users were updated since training (%s): the figures are of the vectors it serves now, "
                 "none of the %s split's rows among their ratings", whose, said, split)
    return out
