"""What ``embedrec evaluate`` and ``embedrec export`` ask of a ``Model``, the questions about the whole run rather
than one user: ``evaluate`` (metrics on the dataset's valid or test split beside the baselines, a ``per_user``
table, other recommenders' ``lists`` scored beside) and the exports of ``export*.py``: ``export`` (the embeddings
as files), ``topk_all`` (every user's top-k) and ``plot_map`` (a 2-D map of the movies); ``one_process``: under
torchrun only ``topk_all``, whose ranks share the users, runs. ``Model``'s methods of the same names call these;
the exports read the run through ``Model._served`` (an opened run's own; a ``TrainedModel``'s once saved).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from embedrec.argcheck import choice_arg, count_arg, device_arg, device_named, flag, path_arg
from embedrec.errors import UsageError, shorten
from embedrec.models_lookup import k_arg


def one_process(what: str) -> None:
    """Refuse ``what`` (an export that is not every user's top-K) under torchrun: only ``topk_all`` splits its work
    over the ranks."""
    from embedrec.device import active

    if active():
        raise UsageError(f"under torchrun, export runs «--topk-all|topk_all» only (each rank scores its users); run "
                         f"«--to and --plot|{what}» in one process")


def evaluate(model, split: str, ks: Iterable[int] | None, *, dataset_dir: str | Path | None,
             moved_to: str | Path | None, device: str | None, per_user: bool | str | Path, overwrite: bool,
             lists: dict | None, metrics=None, against=None, progress: bool = False, notes: bool = True) -> dict:
    """``Model.evaluate``: the arguments checked, then ``evaluate_runs.evaluate_opened`` on the run's dataset (or
    ``export_tables.write_per_user`` for a ``per_user`` file), the runs ``against`` (``evaluate_against``) and other
    recommenders' ``lists`` scored beside; a bar over each ranking pass's users where ``progress`` asks; the notes on
    the figures logged where ``notes`` asks (:func:`log_evaluate_notes`)."""
    from embedrec.evaluate import check_ks
    from embedrec.evaluate_runs import evaluate_opened

    choice_arg(split, ("valid", "test"), "split")
    ks = check_ks(ks) if ks is not None else None
    metrics = per_user_metrics(metrics, per_user)
    if moved_to is not None:
        path_arg(moved_to, "evaluate", "moved_to")
        if dataset_dir is not None:
            raise UsageError("evaluate: give dataset_dir= (read there) or moved_to= (read there where the "
                             "recorded folder has moved), not both")
    if dataset_dir is not None:
        path_arg(dataset_dir, "evaluate", "dataset_dir")
    device_arg(device)
    overwrite, progress, notes = flag(overwrite, "overwrite"), flag(progress, "progress"), flag(notes, "notes")
    if isinstance(per_user, (str, Path)):
        from embedrec.export_tables import write_per_user

        path_arg(per_user, "evaluate", "per_user")
        result = write_per_user(per_user, overwrite, lambda: model.evaluate(
            split, ks, dataset_dir=dataset_dir, moved_to=moved_to, device=device, per_user=True, lists=lists,
            metrics=metrics, against=against, progress=progress, notes=False))
        return log_evaluate_notes(result, split, metrics, notes)
    per_user = flag(per_user, "per_user")
    if overwrite:
        raise UsageError("«--overwrite|overwrite=True» applies to «--per-user FILE|per_user=FILE» only; give "
                         "«--per-user|per_user=», or leave «--overwrite|overwrite» out")
    from embedrec.evaluate_against import against_arg, close_against, open_against
    from embedrec.list_metrics import check_lists

    check_lists(lists)
    runs = against_arg(against, tuple(lists or ()))
    ks = ks or _run_eval_k(model)
    run = model.engine.run
    opened: dict = {}
    if runs:  # each checked against the run's record of its dataset before anything is scored
        from embedrec.run_layout import run_of
        from embedrec.run_updates import trained_movies, trained_users

        opened = open_against(runs, split, run.manifest.get("dataset") or {},
                              (trained_users(run.manifest), trained_movies(run.manifest)), f"run '{run_of(run.path)}'")
    try:
        with device_named(device, "evaluate"):
            # moved_to read by run_inputs.run_dataset's rule, which names moved_to= where that folder is refused
            result = evaluate_opened(run, dataset_dir, split, ks, device, moved_to, per_user,
                                     beside(split, ks, opened, lists, device, progress), metrics, progress)
    finally:
        close_against(opened, runs)
    return log_evaluate_notes(result, split, metrics, notes)


def log_evaluate_notes(result: dict, split: str, metrics, notes: bool) -> dict:
    """``result`` (``evaluate``'s, on ``split``), its notes logged first where ``notes`` asks: what ``embedrec
    evaluate`` says of the figures (``figure_notes.evaluate_notes``, ild among them where ``metrics`` names it),
    then a warning where the model does no better than a baseline. ``TrainedModel.evaluate`` logs them so too."""
    if notes:
        from embedrec.figure_notes import baseline_notes, evaluate_notes, log_notes

        log_notes([*evaluate_notes(result, split, named=metrics or ()), *baseline_notes(result)])
    return result


def beside(split: str, ks, runs: dict, lists: dict | None, device=None, progress: bool = False):
    """What ``evaluate_runs.evaluate_opened`` calls with (the result, the dataset) to score the rows beside the model:
    the ``runs`` ({name: an opened Run}: ``evaluate_against.score_against``, a bar over each one's users where
    ``progress`` asks), then the ``lists`` (``list_metrics.score_outside_lists``); None where there are neither."""
    if not runs and not lists:
        return None

    def scored(result, ds):
        if runs:
            from embedrec.evaluate_against import score_against

            score_against(result, ds, split, ks, runs, device, progress)
        if lists:
            from embedrec.list_metrics import score_outside_lists

            score_outside_lists(result, ds, split, ks, lists)

    return scored


def per_user_metrics(metrics, per_user) -> tuple[str, ...] | None:
    """``evaluate``'s ``metrics`` (the per-user table's: ``evaluate.metric_names_arg``), refused where ``per_user``
    is not asked (they choose its columns only) or where none of them has a value per user (coverage, gini and
    entropy are measured over all the lists at once)."""
    from embedrec.evaluate import WHOLE_LISTS, metric_names_arg

    metrics = metric_names_arg(metrics)
    if metrics is None:
        return None
    if per_user is False:
        raise UsageError("evaluate: metrics= chooses the per-user table's columns; give per_user=True or a file "
                         "(the figures returned hold every metric: evaluate.select_metrics(result, names) cuts them)")
    if all(n in WHOLE_LISTS for n in metrics):
        raise UsageError(f"«--metrics|metrics=» {','.join(metrics)} with «--per-user|per_user»: "
                         f"{', '.join(WHOLE_LISTS)} are measured over all the lists at once, so no user has a value "
                         "of them; choose a per-user metric too (ndcg, recall, novelty, ...), or leave "
                         "«--per-user|per_user» out")
    return metrics


def _run_eval_k(model) -> tuple[int, ...]:
    from embedrec.run_inputs import run_eval_k

    return run_eval_k(model.engine.run)


def export(model, fmt: str, out: str | Path, *, overwrite: bool, sample: int | None, sample_users: int,
           base_url: str | None) -> dict:
    """``Model.export``: the arguments checked (a projector's ``base_url`` an http(s) URL of a folder), then
    ``export.export_dir`` over the run the model reads (``Model._served``)."""
    from embedrec.export import TARGETS, export_dir

    choice_arg(fmt, TARGETS, "fmt")
    path_arg(out, "export", "out")
    if str(out) == "-":
        raise UsageError(f"export: out='-': fmt={fmt!r} writes a folder of files, not to standard output; give a "
                         f"folder, e.g. 'out/{fmt}'")
    overwrite = flag(overwrite, "overwrite")
    if fmt != "projector" and (sample is not None or sample_users or base_url is not None):
        raise UsageError("export: sample, sample_users and base_url apply to fmt='projector' only")
    if base_url is not None and not isinstance(base_url, str):  # a red team: an AttributeError on .rstrip
        raise UsageError(f"export: base_url={shorten(repr(base_url), 40)}: give the URL as text, e.g. "
                         "base_url='https://example.org/projector'")
    if base_url is not None:  # a red team: 'notaurl', a query and a space gave paths no browser fetches
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(base_url)
            _ = parts.port  # 'http://h:x/' (a port that is no number) raises here, as '[::1' did above
        except ValueError:  # a review: 'http://[::1/p' was an internal error
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.query \
                or parts.fragment or any(c.isspace() for c in base_url):
            raise UsageError(f"«--base-url|export: base_url» '{shorten(base_url, 60)}' is not an http(s) URL of "
                             "a folder (no query, fragment or space; %20 for a space), e.g. "
                             "https://example.org/projector")
    if sample is not None:
        count_arg(sample, "sample", 1)
    count_arg(sample_users, "sample_users", 0)
    one_process("export")
    with model._served("export") as rec:
        return export_dir(rec, fmt, out, overwrite, sample, sample_users, base_url=base_url)


def topk_all(model, path: str | Path, k: int | None, *, overwrite: bool, batch_size: int | None,
             device: str | None, progress: bool, diversify: float | None = None) -> dict:
    """``Model.topk_all``: every user's top-k written by ``export.topk_all`` in batches, a bar where
    ``progress`` asks; ``diversify``: each list re-ranked (serve.diversify)."""
    from embedrec.device import secondary
    from embedrec.export import topk_all, topk_range
    from embedrec.serve.diversify import lambda_arg

    path_arg(path, "topk_all", "path")
    overwrite, progress = flag(overwrite, "overwrite"), flag(progress, "progress")
    device_arg(device)
    k = k_arg(model, k)
    diversify = lambda_arg(diversify)
    with model._served("topk_all") as rec, device_named(device, "topk_all"):
        batch = count_arg(batch_size if batch_size is not None else rec.cfg.batch_size, "batch_size", 1)
        if not progress:
            return topk_all(rec, path, k, overwrite, batch, device=device, diversify=diversify)
        from tqdm import tqdm

        lo, hi = topk_range(rec, batch)  # this rank's users, as topk_all scores them
        with tqdm(total=hi - lo, desc="top-k", unit="user", disable=secondary()) as bar:
            return topk_all(rec, path, k, overwrite, batch, bar.update, device=device, diversify=diversify)


def plot_map(model, path: str | Path, method: str, *, overwrite: bool) -> dict:
    """``Model.plot_map``: the target checked before the model is read, then ``export.plot_map``."""
    from embedrec.export import plot_map, plot_target

    path_arg(path, "plot_map", "path")
    choice_arg(method, ("pca", "tsne", "umap"), "method")
    overwrite = flag(overwrite, "overwrite")
    plot_target(path, overwrite)  # the name, its format, an existing file: before the model is read
    one_process("plot_map")
    with model._served("plot_map") as rec:
        return plot_map(rec, path, method, overwrite=overwrite)
