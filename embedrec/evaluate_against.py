"""``evaluate --against RUN``: other trained runs scored beside the model on the same dataset and split, each a
row of evaluate's and columns of its per-user frame, which ``evaluate_paired.finish_per_user`` pairs with the model's
user by user. Pairing needs the same users and the same held-out rows, so a run trained on another dataset, or
another split of it (another record of the dataset's files), is refused before anything is scored."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from embedrec.errors import UsageError, from_here, marked, sh_quote

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.data.dataset import Dataset
    from embedrec.run import Run

OPTION = marked("--against", "against=")


def against_arg(against, taken=()) -> dict:
    """``evaluate``'s ``against`` argument as {name: a run folder (as given) or an opened Run}: a run folder (str or
    Path) or an opened model (``er.open``'s), a list or tuple of them, or a dict {name: one}. A folder is named by
    its own name ('runs/dim32' is 'dim32'; an opened model by its run folder's), or by the path as given where two
    share one, or where it is one of evaluate's own rows or of ``taken`` (the --lists' names); UsageError for
    anything else, for a name of those rows in a dict, or for a run given twice."""
    from embedrec.list_metrics import RESERVED

    if against is None:
        return {}
    if isinstance(against, dict):
        given = list(against.items())
        if not all(isinstance(n, str) and n for n, _ in given):
            raise UsageError("evaluate: against= as a dict takes {name: a run folder}, e.g. against={'dim32': "
                             "'runs/dim32'}")
    else:
        items = list(against) if isinstance(against, (list, tuple)) else [against]
        given = [(None, x) for x in items]
    runs = [(n, _run_given(x)) for n, x in given]
    if not runs:
        raise UsageError("evaluate: against= names no run; give a run folder, e.g. against='runs/dim32'")
    own = [n or _own_name(x) for n, x in runs]
    out: dict = {}
    for (name, x), mine in zip(runs, own):
        if name is None and (own.count(mine) > 1 or mine in RESERVED or mine in taken):
            mine = str(x if not hasattr(x, "manifest") else from_here(x.path))
        if mine in out or mine in RESERVED or mine in taken:
            raise UsageError(f"{OPTION} {mine}: a run given twice, or named as another row is (model, most_popular, "
                             "global_mean, biases, a «--lists|lists=» name); give each run once, under a name of its own")
        out[mine] = x
    return out


def _run_given(x):
    """One run of ``against``: a folder (str or PathLike) as given, or the Run of an opened model."""
    if isinstance(x, (str, os.PathLike)):
        if not str(x):
            raise UsageError("evaluate: against= holds an empty path; give a run folder")
        return x
    run = getattr(getattr(x, "engine", None), "run", None)
    if run is not None and hasattr(run, "manifest"):
        return run
    if hasattr(x, "engine"):  # a TrainedModel: arrays in memory, no run folder to read
        raise UsageError("evaluate: against= takes runs saved to a folder; this model is in memory only (er.train): "
                         "save it first, model.save(run_dir), then give against=run_dir")
    raise UsageError(f"evaluate: against={type(x).__name__}: give a run folder, an opened model (er.open), or a list "
                     "or dict of them")


def _own_name(x) -> str:
    if hasattr(x, "manifest"):  # an opened Run: its run folder's name
        from embedrec.run_layout import run_of

        return Path(os.path.abspath(run_of(x.path))).name
    return Path(x).name or Path(os.path.abspath(x)).name or str(x)


def open_against(runs: dict, split: str, model_rec: dict, counts: tuple, model: str) -> dict:
    """{name: the opened Run} of ``runs`` (:func:`against_arg`'s: a folder is opened here, a Run taken as it is),
    each checked to have been trained on the dataset and split the model was (:func:`check_same_data`:
    ``model_rec``, the model's record of its dataset; ``counts``, its (users, movies); ``model``: the model as a
    message names it) and, on ``split`` valid, not refit on train+valid (valid is its training data then). Said
    before anything is scored; the runs opened here so far are let go where one is refused."""
    from embedrec.evaluate_runs import check_user_ids
    from embedrec.run import load_run

    opened: dict = {}
    try:
        for name, given in runs.items():
            run = given if hasattr(given, "manifest") else load_run(given)
            opened[name] = run
            check_user_ids(run)  # an id twice: refused as the model's run is
            where = str(given) if run is not given else str(from_here(run.path))
            check_same_data(run, where, model_rec, counts, model)
            if split == "valid" and run.manifest.get("refit"):
                raise UsageError(f"run '{where}' ({OPTION}) was refit on train+valid, so its valid split is training "
                                 f"data; evaluate «--split test|'test'», or leave it out of {OPTION}")
    except BaseException:
        close_against(opened, runs)
        raise
    return opened


def close_against(opened: dict, runs: dict) -> None:
    """Let go of the runs :func:`open_against` opened from ``runs``' folders (their holds, which keep pruning
    away), not those given opened."""
    for name, run in opened.items():
        hold = getattr(run, "hold", None)
        if hold is not None and run is not runs.get(name):
            hold.close()


def check_same_data(other: Run, name: str, model_rec: dict, counts: tuple, model: str) -> None:
    """Refuse the run ``other`` (``name``: as given) where its manifest does not record the dataset files the model
    was trained on (``model_rec``: the model's record of its dataset, a run manifest's ``dataset``: its
    ``files_fingerprint``, the SHA-256 over the dataset's files, its splits among them, its ``path`` and its
    ``fingerprint`` of the source files read; ``counts``: the model's (users, movies)): another dataset, another
    split of one, or the same folder ingested again between the two trainings. One line naming both runs and their
    datasets, with the fix."""
    from embedrec.run_updates import trained_movies, trained_users

    rec = other.manifest.get("dataset") or {}
    theirs, ours = rec.get("files_fingerprint"), model_rec.get("files_fingerprint")
    if not theirs or not ours:
        who = f"run '{name}'" if not theirs else model
        raise UsageError(f"{who} records no fingerprint of the files of the dataset it was trained on, so "
                         f"{OPTION} {name} cannot be checked to hold the same users and held-out rows as {model}; "
                         "train it again to pair the two")
    if theirs == ours and (trained_users(other.manifest), trained_movies(other.manifest)) == tuple(counts):
        return
    mine, where = model_rec.get("path"), rec.get("path")
    if mine and where and os.path.realpath(mine) == os.path.realpath(where):
        why = (f"{model} and run '{name}' were trained on two ingests of the dataset '{from_here(mine)}' (its files "
               "changed between their trainings: another split, or other ratings)")
    else:
        how = " (the same source files, split or read otherwise)" if rec.get("fingerprint") and \
            rec.get("fingerprint") == model_rec.get("fingerprint") else ""
        why = (f"{model} was trained on '{from_here(mine) if mine else '?'}' and run '{name}' on "
               f"'{from_here(where) if where else '?'}', whose files differ{how}")
    raise UsageError(f"{why}, so they do not score the same users on the same held-out rows: a paired difference "
                     f"needs both; give {OPTION} a run trained on the model's dataset as it is, or train run "
                     f"'{name}' again on it")


def score_against(result: dict, ds: Dataset, split: str, ks, runs: dict, device=None, progress: bool = False) -> None:
    """Each of ``runs`` ({name: an opened Run}, :func:`open_against`'s) scored on ``split`` of ``ds`` as the model is
    (``evaluate.score_factors``: an explicit run's RMSE and MAE, every run's ranking and beyond-accuracy metrics,
    the latter against the training counts the model's were measured on, ``result["beyond_accuracy"]``), as
    ``result["splits"][split][name]``, its per-user values joined to ``result["per_user"]`` as ``name:ndcg@10``,
    ..., ``name:rmse``, ``name:mae``; ``result["against"]``: {name: {"run": its folder, "updates": where
    update-users re-solved its users (evaluate_runs.updated_rows), "served_index": the approximate index it serves
    through (evaluate_runs.served_index)}}, the row's ``users_untrained`` as the model's; ``progress``: a bar over the
    users each run ranks, under its name."""
    from embedrec.beyond import catalogue
    from embedrec.evaluate import check_split, fit_splits, score_factors
    from embedrec.evaluate_runs import run_factors, served_index, updated_rows
    from embedrec.run_layout import run_of

    counted = (result.get("beyond_accuracy") or {}).get("popularity_counted_on")
    cat = catalogue(ds, tuple(counted.split("+"))) if counted else None
    row = result["splits"][split]
    said = result.setdefault("against", {})
    for name, run in runs.items():
        refit = bool(run.manifest.get("refit"))
        what = f"run '{name}'"
        check_split(ds, split, refit, what)
        f = run_factors(run)
        row[name], frame = score_factors(f, run.explicit, ds, split, ks, fit_splits(split, refit),
                                         cat if cat is not None else catalogue(ds, fit_splits(split, refit)), device,
                                         name if progress else None)
        said[name] = {"run": os.path.abspath(run_of(run.path))}
        served = served_index(run)
        if served is not None:  # its row ranks exactly, as the model's does
            said[name]["served_index"] = served
        updated = updated_rows(run, ds, split, f"run {sh_quote(name)}'s", run_seen=f.get("run_seen"))
        if updated is not None:
            said[name]["updates"] = updated
        mine = frame.drop(columns=[c for c in ("ratings",) if c in frame.columns])  # the model's counts them
        result["per_user"] = result["per_user"].merge(
            mine.rename(columns={c: f"{name}:{c}" for c in mine.columns if c != "user_id"}), on="user_id",
            how="left")
