"""embedrec cross-validate."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, common, log, main, progress_enabled, wrote
from embedrec.cli.ingest import source_given
from embedrec.cli.options import CUTOFFS, FMT, PathParam, cutoffs, metric_names, report, unmade_metrics
from embedrec.cli.signals import sigterm_as_interrupt

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


@main.command("cross-validate", context_settings=CONTEXT)
@click.argument("source", required=False, callback=source_given)
@click.option("--folds", type=int, help="How many folds, 2 to 100 (split.folds; default 5): each user's ratings dealt "
                                        "at random into them, each fold the test split once.")
@click.option("-o", "--output", type=PathParam(file_okay=False),
              help="The folder of the folds (each a dataset and a run: OUTPUT/fold-i/data, OUTPUT/fold-i/run) and "
                   "cross_validation.json; default run.dir with -cv added (runs/ml-100k-cv).")
@CUTOFFS
@click.option("--metrics", "metric_texts", multiple=True, metavar="NAMES",
              help="The metrics to print, as evaluate --metrics takes them (ndcg,recall,... or accuracy, beyond, "
                   "all); cross_validation.json holds them all.  [default: all]")
@click.option("--fresh", is_flag=True, help="Ingest and train every fold again, where a rerun keeps the folds done.")
@FMT
@common(config=lambda path, overrides, options: _config(path, overrides, options["folds"]))
def cross_validate(cfg: Config, source, folds, output, ks, metric_texts, fresh, fmt):
    """K-fold cross-validation: ingest, train and evaluate each fold, then the mean and its standard error.

    Fold i of K is a dataset ingested with split.folds=K and split.fold=i (its test split: a Kth of each
    user's ratings) and a run trained on it as train does, its test split evaluated as evaluate does. Prints
    each fold's metrics (the model and its baselines) and their mean, standard deviation and standard error
    over the folds. Rerun the same command after a stop to go on: finished folds are kept, a stopped fit
    resumes.

    NDCG@10 and precision grow with the movies held out per user (recall falls): at --folds 3 a third of each
    user's ratings (ML-100K: NDCG@10 0.54), at 5 a fifth (0.45, as train's test split of 20%). Compare figures
    at one K only (docs/quality.md).

    \b
    Examples:
      embedrec cross-validate ml-100k
      embedrec cross-validate ratings.csv --folds 10 -o runs/cv10 --metrics ndcg,recall -k 10
      embedrec cross-validate ml-100k --set model.objective=explicit --metrics rmse,mae -o runs/ml-100k-cv-explicit
    """
    from embedrec.crossval import cross_validate as run_folds
    from embedrec.output import resolve_format, write_rows

    chosen = metric_names(metric_texts)  # said before anything is ingested
    unmade = unmade_metrics(chosen, cfg.model.objective == "explicit", "the model cross-validate trains")
    if unmade:
        chosen = tuple(n for n in chosen if n not in unmade)
    cut = cutoffs(ks, cfg)
    with sigterm_as_interrupt():  # SIGTERM (kill, a scheduler's stop) leaves as Ctrl-C: the folds done kept, exit 143
        res = run_folds(source or None, cfg, folds=folds, output=output or None, ks=cut, fresh=fresh,
                        progress=progress_enabled(), metrics=chosen)
    wrote(res.output)
    fmt = resolve_format(fmt)
    if fmt == "json":
        from embedrec.fsutil.files import json_safe  # (NaN as null: JSON has no NaN)

        report(json.dumps(json_safe(_selected(res.to_dict(), chosen)), indent=2, default=float))
        return
    rows = res.rows(models=None)
    cols = ["fold", "model", *_metric_columns(rows, chosen)]
    if len(cols) == 2:  # no header alone (the folds measured none of those chosen)
        log.warning("no metrics to report: the folds' evaluations have none of the metrics --metrics chose; "
                    "cross_validation.json holds those they have")
        return
    # a row with none of the metrics printed left out, as evaluate leaves it (a review: --metrics rmse,mae printed
    # 20 empty most_popular rows)
    rows = [r for r in rows if any(r.get(c) is not None for c in cols[2:])]
    if fmt != "table":
        write_rows(rows, cols, fmt)
        return
    # a terminal: a row a metric, the model's folds, mean, std and SE as columns, then each baseline's mean, then
    # the model minus each baseline: the mean and SE of the folds' differences
    model = [r for r in rows if r["model"] == "model"]
    others = [m for m in res.summary if m != "model" and any(c in res.summary[m] for c in cols[2:])]
    paired = [b for b in res.paired if any(c in res.paired[b] for c in cols[2:])]
    table = [{"metric": c, **{str(r["fold"]): r.get(c) for r in model},
              **{f"{m} mean": res.summary[m].get(c, {}).get("mean") for m in others},
              **{f"model-{b} {stat}": res.paired[b].get(c, {}).get(stat) for b in paired for stat in ("mean", "se")}}
             for c in cols[2:]]
    write_rows(table, ["metric", *(str(r["fold"]) for r in model), *(f"{m} mean" for m in others),
                       *(f"model-{b} {stat}" for b in paired for stat in ("mean", "se"))], fmt)
    log.info("columns 0-%d: the model's test metrics of each fold, by its split.fold (from 0, as its folder fold-0 "
             "to fold-%d); mean, std and se over the folds (se = std / sqrt(%d)); then each baseline's mean%s",
             res.k - 1, res.k - 1, res.k, "; then the model minus each baseline (model-BASELINE), the mean and se of "
             "its difference fold by fold (the folds are the unit; a difference within two se of 0 is a tie)"
             if paired else "")


def _config(path, overrides, folds):
    """The config as cross-validate checks it: its split keys with --folds' K (crossval.command_config)."""
    from embedrec.crossval import command_config

    return command_config(path, overrides, folds)


def _metric_columns(rows: list[dict], chosen) -> list[str]:
    """The metric columns in the order the folds report them, counts left out, only --metrics' where given."""
    cols: list[str] = []
    for r in rows:
        for c in r:
            if c not in ("fold", "model") and c not in cols and not c.startswith(("users_", "rows_")) and \
                    (chosen is None or c.split("@")[0] in chosen):
                cols.append(c)
    return cols


def _selected(result: dict, chosen) -> dict:
    """The JSON result with only --metrics' metrics (each fold's counts kept)."""
    if chosen is None:
        return result

    def keep(row: dict) -> dict:
        return {k: v for k, v in row.items() if k.startswith(("users_", "rows_")) or k.split("@")[0] in chosen}

    def measured(row: dict) -> bool:  # a row with one of the metrics chosen (not its counts alone)
        return any(not k.startswith(("users_", "rows_")) for k in row)

    out = dict(result)
    out["folds"] = [{**f, "metrics": {m: kept for m, row in f["metrics"].items() if measured(kept := keep(row))}}
                    for f in result["folds"]]
    out["summary"] = {m: kept for m, row in result["summary"].items() if measured(kept := keep(row))}
    out["paired"] = {b: kept for b, row in (result.get("paired") or {}).items() if (kept := keep(row))}
    return out
