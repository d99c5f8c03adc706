"""embedrec evaluate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, common, log, main
from embedrec.cli.options import FMT, RUN, PathParam, metrics_out

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


@main.command(context_settings=CONTEXT)
@click.option("--split", type=click.Choice(["valid", "test"]), default="test", show_default=True)
@click.option("-k", "ks", multiple=True, help="Cut-offs: -k 10 -k 20 or -k 10,20; default train.eval_k.")
@click.option("--per-user", "per_user", type=PathParam(dir_okay=False),
              help="Also write each ranked user's metrics to this new .csv, .tsv or .parquet file (user_id, ndcg@10, "
                   "...; an explicit model's also rmse, mae, ratings; join two runs' on user_id for paired "
                   "differences).")
@click.option("--overwrite", is_flag=True, help="Let --per-user replace a file evaluate --per-user wrote.")
@click.option("--lists", "lists", multiple=True, type=PathParam(exists=True, allow_dash=True),
              help="Also score another recommender's top-K lists on the same split and users (a .csv, .tsv or "
                   ".parquet file of user_id, movie_id, and rank or score: implicit's, LightFM's, another run's "
                   "export --topk-all, or a folder of such parts, as export --topk-all DIR writes), beside the model "
                   "under the file's name; repeatable; - reads CSV, TSV or JSON lines from stdin.")
@click.option("--metrics", "metric_texts", multiple=True, metavar="NAMES",
              help="The metrics to print, each at every K: names (ndcg,recall,novelty,gini,...) or groups: accuracy "
                   "(rmse, mae, precision, recall, ndcg, map, hitrate, mrr), beyond (coverage, arp, novelty, "
                   "longtail, ild, gini, entropy) or all; comma-separated or repeated.  [default: all]")
@RUN
@FMT
@common
def evaluate(cfg: Config, split, ks, per_user, overwrite, lists, metric_texts, run_dir, fmt):
    """Evaluate a trained run on its validation or test split, beside the baselines.

    Explicit models get RMSE and MAE; every model gets Precision, Recall, NDCG, MAP, HitRate, MRR and
    coverage at each K (candidates: all movies minus the user's movies in train, and in valid when
    evaluating on test, and those rated below data.min_rating), and the beyond-accuracy metrics of its
    lists: ARP and novelty (the listed movies' popularity in training), long-tail share, genre diversity
    (where the movies have genres), and the Gini index and entropy of how often each movie is listed.

    \b
    Examples:
      embedrec evaluate --split test -k 10,20 --format json
      embedrec evaluate --metrics ndcg,recall,novelty,gini
      embedrec evaluate --per-user users.csv
      embedrec evaluate --lists implicit_als.csv -k 10
    """
    from embedrec.api import open as open_model
    from embedrec.list_metrics import read_lists

    ks = tuple(k for text in ks for k in _cutoffs(text))
    chosen = _metric_names(metric_texts)  # said before anything is read or scored
    # the dataset the run recorded; where that folder is gone (moved), data.prepared if the user set it (the
    # run's fingerprint still checks it is the same data)
    moved_to = cfg.data.prepared if cfg.is_set("data.prepared") else None
    if not ks and cfg.is_set("train.eval_k"):
        ks = tuple(cfg.train.eval_k)
    from pathlib import Path

    names = ["stdin" if p == "-" else Path(p).name for p in lists]
    named = {}
    for given, name in zip(lists, names):  # each under its file's name (the path as given where two share one)
        named[given if names.count(name) > 1 else name] = read_lists(given)
    with open_model(run_dir or cfg.run.dir, cfg) as model:
        from embedrec.run import moved_dataset

        _unmade_metrics(chosen, model.engine.explicit, "this run's model")  # said before anything is scored

        metrics = model.evaluate(split, ks or None, device=cfg.train.device,
                                 dataset_dir=moved_dataset(model.engine.run, moved_to) if moved_to else None,
                                 per_user=per_user or False, overwrite=overwrite, lists=named or None)
    if per_user:
        log.info("wrote %s (%s users)", per_user, f"{metrics['splits'][split]['model']['users_evaluated']:,}")
    below = metrics.get("excluded_rated_below", 0)
    skipped = metrics["splits"][split].get("model", {}).get("users_skipped", 0)
    untrained = metrics["splits"][split].get("model", {}).get("users_untrained", 0)
    log.info("ranked each user's candidates: all movies minus those the user rated in %s%s%s",
             metrics["excluded"].replace("+", " and "),
             f", and the {below:,} rated below data.min_rating (as recommend leaves them out)" if below else "",
             # said in every format (a review: only json's users_skipped told that some users were not scored)
             f"; {skipped:,} user{'s' if skipped != 1 else ''} with no {split} rating to find not scored (each "
             "metric is a mean over the others)" if skipped else "")
    served = metrics.get("served_index")
    if served:  # a first-hour review: with an hnsw index, the served lists scored 0.451052 against the row's 0.451175
        recall = served.get("recall@10")
        log.info("note: the model row ranks every movie exactly; recommend serves through this run's %s index%s, so "
                 "its lists can differ a little: score them with export --topk-all FILE then evaluate --lists FILE",
                 served["kind"], f" (recall@10 {recall:.4f} of the exact lists when built)" if recall is not None else "")
    if untrained:  # a review: a cold-start split's users without a vector were averaged in without a word
        log.warning("%s of the users scored on %s have no training rating (split.cold_start's, or, on a run trained "
                    "without a refit, users first seen in valid), so the model has no "
                    "vector for them: their lists, in its figures, come from the movie biases alone (the catalogue's "
                    "own order where the model has none); recommend answers them with --fallback popular (the most "
                    "popular movies; those of its latest window where the model adds recent popularity, "
                    "train.als_trend, as in these figures)", f"{untrained:,}", split)
    if any(n.strip().lower() == "ild" for text in metric_texts for n in text.split(",")) and \
            not (metrics.get("beyond_accuracy") or {}).get("genres"):
        log.warning("ild: the movies of this dataset have no genres, so their lists have no genre diversity to "
                    "measure")
    if chosen is not None:
        from embedrec.evaluate import select_metrics

        metrics_out(metrics, fmt, shown=select_metrics(metrics, chosen))
    else:
        metrics_out(metrics, fmt)


def _metric_names(texts) -> tuple[str, ...] | None:
    """--metrics' names and groups as the metric names they stand for (None: all, the default); a UsageError
    naming the ones there are for a name that is none of them."""
    from embedrec.errors import UsageError, shorten
    from embedrec.evaluate import METRIC_GROUPS

    if not texts:
        return None
    out: list[str] = []
    for text in texts:
        for name in (n.strip().lower() for n in text.split(",")):
            if name in METRIC_GROUPS:
                out.extend(METRIC_GROUPS[name])
            elif name in METRIC_GROUPS["all"]:
                out.append(name)
            else:
                hint = (f"give it without @K (-k sets the cut-offs: --metrics {name.split('@')[0]} -k "
                        f"{name.split('@')[1]})" if "@" in name and name.split("@")[0] in METRIC_GROUPS["all"] else
                        f"give names from {', '.join(METRIC_GROUPS['all'])}, or a group: "
                        f"{', '.join(METRIC_GROUPS)}")
                raise UsageError(f"--metrics '{shorten(text, 60)}': {shorten(name, 30) or 'an empty name'} is no metric "
                                 f"of evaluate; {hint}")
    return tuple(dict.fromkeys(out))


def _unmade_metrics(chosen, explicit: bool, whose: str) -> tuple[str, ...]:
    """Of --metrics' ``chosen`` names, those the model does not make: rmse and mae score predicted ratings, which an
    implicit model (``explicit`` False) has none of; a UsageError where that is every name, so nothing would be
    left to print (a review: cross-validate --metrics rmse printed an empty table, exit 0, and evaluate said it had
    no split to evaluate on). ``whose``: the model, as the message names it ("this run's model")."""
    from embedrec.errors import UsageError
    from embedrec.metrics import RATING

    unmade = () if chosen is None or explicit else tuple(n for n in chosen if n in RATING)
    if unmade and len(unmade) == len(chosen):
        raise UsageError(f"--metrics {','.join(chosen)}: rmse and mae score an explicit model's predicted ratings, and "
                         f"{whose} is implicit (model.objective: implicit), which ranks movies and predicts no "
                         "rating; choose ranking metrics (ndcg, recall, ..., or the groups accuracy, beyond), or "
                         "train an explicit model (--set model.objective=explicit)")
    if unmade:
        log.warning("--metrics: %s left out: %s is implicit (model.objective: implicit) and predicts no rating to "
                    "score", " and ".join(unmade), whose)
    return unmade


def _cutoffs(text: str) -> list[int]:
    """'10' or '10,20' (as tune-dims takes its lists; a first-hour pass: '10,20' was 'not a valid integer
    range'), each a whole number >= 1."""
    from embedrec.config import MAX_EVAL_K
    from embedrec.errors import UsageError

    try:
        ks = [int(x) for x in text.split(",")]
    except ValueError:
        ks = []
    if not ks or min(ks) < 1:
        raise UsageError(f"-k '{text}': expected whole numbers >= 1, one or comma-separated, e.g. -k 10 or -k 10,20")
    if max(ks) > MAX_EVAL_K:  # as train.eval_k (a first-hour review: -k 5000000 was scored, and named, at that K)
        raise UsageError(f"-k '{text}': {max(ks)} is above the maximum {MAX_EVAL_K} (as for train.eval_k)")
    return ks
