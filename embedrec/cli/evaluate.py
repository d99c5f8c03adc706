"""embedrec evaluate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, common, log, main, progress_enabled
from embedrec.cli.options import (
    CUTOFFS,
    FMT,
    RUN,
    PathParam,
    cutoffs,
    metric_names,
    metrics_out,
    moved_to,
    unmade_metrics,
)

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


@main.command(context_settings=CONTEXT)
@click.option("--split", type=click.Choice(["valid", "test"]), default="test", show_default=True)
@CUTOFFS
@click.option("--per-user", "per_user", type=PathParam(dir_okay=False),
              help="Also write each ranked user's metrics to this new .csv, .tsv or .parquet file (user_id, ndcg@10, "
                   "...; an explicit model's also rmse, mae, ratings and its rating baselines' global_mean:rmse, ...; "
                   "then most_popular:ndcg@10, ..., each --against run's and each --lists file's; -k's and --metrics' "
                   "columns).")
@click.option("--overwrite", is_flag=True, help="Let --per-user replace a file evaluate --per-user wrote.")
@click.option("--lists", "lists", multiple=True, type=PathParam(allow_dash=True),
              help="Also score another recommender's top-K lists on the same split and users (a .csv, .tsv or "
                   ".parquet file of user_id, movie_id, and rank or score: implicit's, LightFM's, another run's "
                   "export --topk-all, or a folder of such parts, as export --topk-all DIR writes), beside the model "
                   "under the file's name; repeatable; - reads CSV, TSV or JSON lines from stdin.")
@click.option("--truth", "truth", type=PathParam(allow_dash=True), metavar="FILE",
              help="Score on this file's (user_id, movie_id) pairs instead of the dataset's split: a test split made "
                   "elsewhere (a .csv, .tsv or .parquet file; every pair relevant). The run's lists for its users (as "
                   "recommend serves them) and each --lists file, paired user by user.")
@click.option("--against", "against", multiple=True, type=PathParam(exists=True, file_okay=False, kind="folder path"),
              metavar="RUN",
              help="Also score another trained run on the same split and users, beside the model under its folder's "
                   "name, paired with it user by user; it must have been trained on the same dataset and split "
                   "(refused otherwise); repeatable.")
@click.option("--metrics", "metric_texts", multiple=True, metavar="NAMES",
              help="The metrics to print, each at every K: names (ndcg,recall,novelty,gini,...) or groups: accuracy "
                   "(rmse, mae, precision, recall, ndcg, map, hitrate, mrr, auc), beyond (coverage, arp, novelty, "
                   "longtail, ild, gini, entropy) or all; comma-separated or repeated.  [default: all]")
@RUN
@FMT
@common
def evaluate(cfg: Config, split, ks, per_user, overwrite, lists, truth, against, metric_texts, run_dir, fmt):
    """Evaluate a trained run on its validation or test split, beside the baselines.

    Explicit models get RMSE and MAE; every model gets Precision, Recall, NDCG, MAP, HitRate, MRR, AUC and
    coverage at each K (candidates: all movies minus the user's movies in train, and in valid when
    evaluating on test, and those rated below data.min_rating), and the beyond-accuracy metrics of its
    lists: ARP and novelty (the listed movies' popularity in training), long-tail share, genre diversity
    (where the movies have genres), and the Gini index and entropy of how often each movie is listed.
    Then the model minus each other row (most_popular, each --against run and each --lists file; an explicit
    model's RMSE and MAE minus global_mean's, biases' and each explicit run's), paired user by user over the users
    both score (model-OTHER), and its standard error (model-OTHER se): a difference within two SE of 0 is a tie.

    \b
    Examples:
      embedrec evaluate --split test -k 10,20 --format json
      embedrec evaluate --metrics ndcg,recall,novelty,gini
      embedrec evaluate --per-user users.csv
      embedrec evaluate --run runs/a --against runs/b -k 10
      embedrec evaluate --lists implicit_als.csv -k 10
      embedrec evaluate --truth my_test.csv --lists implicit_als.csv   # a split made elsewhere
    """
    from embedrec.api import open as open_model
    from embedrec.figure_notes import evaluate_notes, log_notes
    from embedrec.list_metrics import read_lists

    ks = cutoffs(ks, cfg)
    chosen = metric_names(metric_texts)  # said before anything is read or scored
    # the dataset the run recorded; where that folder is gone (moved), a --set data.prepared, or a config file's
    # where it holds a dataset (cli.options.moved_to; the run's fingerprint still checks it is the same data)
    moved = moved_to(cfg)
    from pathlib import Path

    if list(lists).count("-") > 1:  # (a shell review: the second read nothing, 'No columns to parse from file')
        raise click.UsageError("--lists - is given twice: standard input is read once; give the other lists as a file")
    # a process substitution's /dev/fd/63 under the option's place among the --lists ('lists2'), not as '63'
    names = ["stdin" if p == "-" else f"lists{i}" if Path(p).parent.as_posix() in ("/dev/fd", "/proc/self/fd")
             else Path(p).name for i, p in enumerate(lists, 1)]
    named = {}
    if truth is not None:  # a split made elsewhere: said before anything is read
        ctx = click.get_current_context()
        given = [f"--{n.replace('_', '-')}" for n in ("split", "per_user", "against")
                 if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"{given[0]} does not apply to --truth, which scores on the file's pairs (the "
                                   "run's lists and each --lists file's)")
        if "-" in lists and truth == "-":
            raise click.UsageError("--truth - and --lists - both read standard input, which is read once; give one "
                                   "as a file")
    columns = _id_columns(cfg, run_dir) if lists or truth is not None else None
    for given, name in zip(lists, names):  # each under its file's name (the path as given where two share one)
        named[given if names.count(name) > 1 else name] = read_lists(given, columns=columns)
    if truth is not None:
        _truth_out(cfg, run_dir, truth, named, ks, chosen, fmt, columns)
        return
    with open_model(run_dir or cfg.run.dir, cfg) as model:
        unmade_metrics(chosen, model.engine.explicit, "this run's model")  # said before anything is scored
        twins = model.engine.catalogue.twin_films()  # (the served lists leave out more: said below)
        metrics = model.evaluate(split, ks, device=cfg.train.device, moved_to=moved, per_user=per_user or False,
                                 overwrite=overwrite, lists=named or None, metrics=chosen if per_user else None,
                                 against=list(against) or None, progress=progress_enabled(), notes=False)
    if per_user:
        log.info("wrote %s (%s users)", per_user, f"{metrics['splits'][split]['model']['users_evaluated']:,}")
    skipped = metrics["splits"][split].get("model", {}).get("users_skipped", 0)
    parts = [{"updates": "the ratings update-users gave"}.get(p, p) for p in metrics["excluded"].split("+")]
    log.info("ranked each user's candidates: all movies minus those the user rated in %s%s%s",
             " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 2 else parts), _below_said(metrics, split),
             # said in every format (a review: only json's users_skipped told that some users were not scored)
             f"; {skipped:,} user{'s' if skipped != 1 else ''} with no {split} rating to find not scored (each "
             "metric is a mean over the others)" if skipped else "")
    if twins:  # a first-hour review: the lists export --topk-all writes scored 0.450775, evaluate's 0.451043
        log.info("the model's lists are ranked so as other recommenders' are; the lists recommend serves also leave "
                 "out the other ids of a film the user rated (%s film%s here %s listed under several ids), so they "
                 "score a little differently: evaluate --truth FILE scores the served ones", f"{twins:,}",
                 "" if twins == 1 else "s", "is" if twins == 1 else "are")
    shown = metrics
    if chosen is not None:
        from embedrec.evaluate import select_metrics

        shown = select_metrics(metrics, chosen)
    # the library's notes on these figures (an approximate index, users without a vector, ild without genres, the
    # paired rows), before the rows: the warnings of a model behind its baseline come after them (metrics_out)
    log_notes(evaluate_notes(metrics, split, named=[n for text in metric_texts for n in text.split(",")],
                             shown=shown))
    if chosen is not None:
        metrics_out(metrics, fmt, shown=shown)
    else:
        metrics_out(metrics, fmt)


def _id_columns(cfg: Config, run_dir) -> dict[str, str] | None:
    """The names of the id columns a --truth or --lists file may give, as the run's dataset was ingested (or as
    data.columns.user and .movie set them): user_update_settings.id_columns. None where the run cannot be read
    (opening it says why)."""
    from embedrec.config_ingest import chosen_keys
    from embedrec.errors import EmbedrecError
    from embedrec.run import load_run
    from embedrec.user_update_settings import id_columns

    try:
        run = load_run(run_dir or cfg.run.dir)
    except EmbedrecError:
        return None
    return id_columns(run, cfg.data, chosen_keys(cfg, ("data.columns.user", "data.columns.movie")))


def _truth_out(cfg: Config, run_dir, truth: str, lists: dict, ks, chosen, fmt, columns=None) -> None:
    """``evaluate --truth FILE``: the run's lists and each --lists file scored on FILE's pairs
    (list_metrics.score_on_truth), written as evaluate writes a split's. ``columns``: the id columns' names as the
    run's dataset gives them (:func:`_id_columns`)."""
    from embedrec.api import open as open_model
    from embedrec.errors import DataError
    from embedrec.list_metrics import read_lists, score_on_truth

    name = "stdin" if truth == "-" else str(truth)
    try:
        pairs = read_lists(truth, pairs=True, columns=columns)
    except DataError as e:  # said of the held-out pairs, not of lists
        if "no such file" in e.raw:
            raise DataError(f"{name}: no such file; give the held-out pairs' file (user_id, movie_id)") from None
        raise
    _truth_metrics(chosen)
    with open_model(run_dir or cfg.run.dir, cfg) as model:
        metrics = score_on_truth(model, pairs, ks, lists, name=name)
    said = metrics["truth"]
    log.info("scored on %s: %s pairs of %s users (%s unknown to the run, no list of its own); the run's lists leave "
             "out each user's movies in the data it was trained on, as recommend does", name, f"{said['pairs']:,}",
             f"{said['users']:,}", f"{said['users_unknown']:,}")
    shown = metrics
    if chosen is not None:
        from embedrec.evaluate import select_metrics

        shown = select_metrics(metrics, chosen)
    from embedrec.figure_notes import evaluate_notes, log_notes

    # what the paired rows are and which are ties, as evaluate says it of a split (a first-hour review: unsaid here)
    log_notes(evaluate_notes(metrics, "truth", shown=shown))
    metrics_out(metrics, fmt, shown=shown if chosen is not None else None, notes=False)


def _truth_metrics(chosen) -> None:
    """--metrics with --truth: the ranking metrics and coverage are scored on the file's pairs; rmse and mae (a
    rating each pair lacks) and the beyond-accuracy ones (which read the run's dataset split) are not: refused where
    they are all that was chosen, else said in a warning (a first-hour review: `--truth --metrics novelty,gini`
    printed nothing, exit 0, and an explicit run was told it is implicit)."""
    from embedrec.beyond import NAMES as BEYOND
    from embedrec.errors import UsageError
    from embedrec.metrics import RATING

    unmade = [n for n in (chosen or ()) if n in RATING or n in BEYOND]
    if not unmade:
        return
    why = ("--truth scores the lists on the file's pairs by the ranking metrics (precision, recall, ndcg, map, "
           "hitrate, mrr, auc) and coverage; rmse and mae (predicted ratings) and the beyond-accuracy metrics (arp, "
           "novelty, longtail, ild, gini, entropy) are scored on the run's own split: evaluate without --truth")
    if len(unmade) == len(chosen):
        raise UsageError(f"--metrics {','.join(chosen)}: {why}")
    log.warning("--metrics: %s left out: %s", ", ".join(unmade), why)


def _below_said(metrics: dict, split: str) -> str:
    """What the ranking left out of the pairs kept apart as rated (below data.min_rating), for the line that says
    what was excluded: those rated before the split's period (as the ratings), the rest candidates; every one on
    a dataset that does not record when (ingested before the parts were kept), with how to do better."""
    below, later = metrics.get("excluded_rated_below", 0), metrics.get("rated_below_held_out", 0)
    if later is None:
        return (f", and the {below:,} rated below data.min_rating, whatever their time (as recommend leaves them "
                "out; this dataset was ingested before embedrec split them as it splits the ratings, so those rated "
                "in the held-out period are left out too, which flatters the figures a little; ingest it again, "
                "embedrec ingest --overwrite, to leave out only those rated before)")
    if not later:
        return f", and the {below:,} rated below data.min_rating (as recommend leaves them out)" if below else ""
    before, held = ("train", "valid and test") if split == "valid" else ("train and valid", split)
    return (f", and the {below:,} rated below data.min_rating in {before} (recommend leaves out all of them; the "
            f"{later:,} in {held} stay candidates, as the held-out ratings do)")
