"""embedrec tune-dims."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, command_line, common, log, main, progress_enabled
from embedrec.cli.options import RUN, PathParam, report
from embedrec.cli.signals import sigterm_as_interrupt
from embedrec.errors import UsageError, command, sh_quote

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


def _numbers(text: str | None, what: str, kind=float) -> list | None:
    """'16,32,64' as numbers of ``kind`` (float or int; '8.5' is no int); None for no text."""
    if text is None:
        return None
    example = "1e-4,1e-3" if kind is float else "16,32,64"
    for n, x in enumerate(text.split(","), 1):  # as --liked: an empty list or item is an error, not the defaults
        if not x.strip():
            raise UsageError(f"{what} '{text}': item {n} is empty; give comma-separated values, e.g. {example}")
    try:
        return [kind(x) for x in text.split(",")]
    except ValueError:
        words = "numbers" if kind is float else "whole numbers"
        raise UsageError(f"{what} '{text}': expected comma-separated {words}, e.g. {example}") from None


def _tolerance(text: str | None) -> float | str | None:
    if text is None:
        return None
    t = text.strip()
    if t == "auto":  # train.als_dims' rule (tune.tolerance's default)
        return t
    try:
        share = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        share = float("nan")
    if not 0 <= share <= 0.99:  # NaN fails too; at most tune.tolerance's maximum
        raise UsageError(f"--tolerance '{text}': expected a share from 0 to 99%, such as 1% or 0.01, or auto")
    return share


@main.command("tune-dims", context_settings=CONTEXT)
@click.option("--dims", help="Comma-separated dimensions (tune.dims); the fourth-root value is always added.")
@click.option("--weight-decay", "wds", help="Comma-separated L2 strengths to sweep per dimension (tune.weight_decays): train.als_reg for als, the weight decays otherwise.")
@click.option("--tolerance", help="Choose the smallest dim within this of the best valid metric, e.g. 1% (default "
                                   "tune.tolerance, auto: for the als model 0.5%, the rule train's train.als_dims "
                                   "chooses by; for the others 0, the best).")
@click.option("--write", "write_path", type=PathParam(dir_okay=False),
              help="Write a config with the choice here, a .yaml file (refused before the sweep if it exists; see "
                   "--overwrite).")
@click.option("--overwrite", is_flag=True, help="Let --write replace a config tune-dims wrote (never a file of yours).")
@click.option("--fresh", is_flag=True, help="Redo finished trials instead of keeping them.")
@RUN
@click.option("--format", "fmt", type=click.Choice(["auto", "table", "json", "csv", "tsv", "jsonl"]),
              default="auto", show_default=True, help="Output format (auto: a table on a terminal, else TSV).")
@common
def tune_dims(cfg: Config, dims, wds, tolerance, write_path, overwrite, fresh, run_dir, fmt):
    """Sweep the embedding dimension on the validation split and show where more dimensions stop helping.

    The choice is the smallest dimension within --tolerance of the best validation score (by default, for the
    als model, 0.5%, as train's train.als_dims chooses; the best for the others); the table's test_metric is
    reported only, never used to choose.

    \b
    Examples:
      embedrec tune-dims
      embedrec tune-dims --dims 32,64,128,256 --tolerance 1% --write tuned.yaml
    """
    from embedrec import api
    from embedrec.config import find_config
    from embedrec.output import resolve_format, write_rows
    from embedrec.tune import choice_overrides, current_note, describe_choice

    if run_dir:  # the sweep's folder is run.dir/tune unless tune.dir says otherwise
        from embedrec.config import set_explicit

        cfg = set_explicit(cfg, "run.dir", run_dir)
    from embedrec.fsutil.outputs import through_missing_key

    cfg = through_missing_key(cfg, "run.dir")  # the folder made, named in every line below ('a/../x': 'x')
    run_dir = cfg.run.dir if run_dir else None
    dim_list = _numbers(dims, "--dims", int)
    input_config = find_config(click.get_current_context().params.get("config_path"))  # -c, $EMBEDREC_CONFIG, ./
    wd_list, share = _numbers(wds, "--weight-decay"), _tolerance(tolerance)
    # SIGTERM (kill, a scheduler's stop) leaves like Ctrl-C: the workers stopped, finished trials kept, exit 143
    with sigterm_as_interrupt():
        res = api.tune_dims(cfg, dims=dim_list, weight_decays=wd_list, tolerance=share, fresh=fresh, write=write_path,
                    overwrite=overwrite, config_file=input_config, progress=progress_enabled())
    chosen = res["chosen"]
    fmt = resolve_format(fmt)
    if fmt == "json":
        from embedrec.fsutil.files import json_safe  # (NaN as null: JSON has no NaN)

        report(json.dumps(json_safe(res), indent=2, default=float))
    else:
        m = res["metric"]
        rows = [{**t, "note": ", ".join(x for x, on in (("fourth-root", t["fourth_root"]), ("current", t.get("current")),
                                                 ("chosen", t is chosen)) if on)}
                for t in res["trials"]]
        chose = ["als_reg", "als_recency", "als_unobserved"] if any("als_reg" in t for t in rows) else []  # als:
        # what train's selection chose in the trial (and its count weight, on a data.repeats=sum dataset)
        chose += ["als_count_weight"] if any("als_count_weight" in t for t in rows) else []
        swept = ["weight_decay"] if fmt != "table" or any(t.get("weight_decay") is not None for t in rows) else []
        # (an empty column left out of the table only: csv/tsv keep their columns whatever was swept)
        # the metric's name in each row where the rows are data (a shell review: csv/tsv/jsonl said valid_metric
        # and never which; the table says it on stderr)
        named = ["metric"] if fmt != "table" else []
        cols = ["dim", *swept, *chose, "params", "epochs", "train_loss", *named, "train_metric", "valid_metric",
                "test_metric", "seconds", "peak_mem_mb", "note"]
        if fmt in ("table",):  # stdout carries the table only
            added = [(what, key) for what, key in (("the low-pass block", "als_lowpass"),
                                                   ("the recent popularity", "als_trend"))
                     if getattr(cfg.train, key) != 0]  # (not where it is off: a review)
            one = len(added) == 1
            from embedrec.tune import TRAIN_SAMPLE

            on = (f"RMSE on up to {TRAIN_SAMPLE['explicit']:,} training ratings" if cfg.model.objective == "explicit"
                  else f"the same on up to {TRAIN_SAMPLE['ranking']:,} training users")
            log.info("metric: %s (train_metric: " + on + ", a seeded sample; test_metric: reported, not used)%s", m,
                     f"; valid_metric scores the model alone, before {' and '.join(w for w, _ in added)} train adds "
                     f"where valid chooses {'it' if one else 'them'} or "
                     f"{' / '.join(f'train.{k}' for _, k in added)} {'sets it' if one else 'set them'}, so train "
                     "can print another one" if chose and added else "")
        write_rows(rows, cols, fmt)
    # the whole train command: this sweep's -c and --set (but tune.*), --run, then the choice (a first-hour pass:
    # the bare --set line trained the default model where the sweep had been of -c configs/ml100k-explicit.yaml)
    use = command_line("train", (["--run", str(run_dir)] if run_dir else [])
                       + [a for o in choice_overrides(chosen) for a in ("--set", o)], skip=("tune.",))
    if write_path:  # the written config's train (into the run it names: a first-hour review's Use: line trained
        use = f"embedrec train -c {sh_quote(str(write_path))}"  # into the run that config kept, replacing it)
    # the config trained with now beside the choice; no train command where the choice is that config (a first-hour
    # review: a 'Use:' line advised a setting that validated below it)
    said, keep = current_note(res)
    log.info("chosen: dim %d (validation %s %.4f), %s; %s; the fourth-root rule gives %d%s", chosen["dim"],
             res["metric"], chosen["valid_metric"], describe_choice(res), said, res["fourth_root"],
             "" if keep else f". Use: {use}")
    log.info("results: %s; plot: %s", res["results"], res["plot"])
    if write_path:
        from embedrec.tune import tuned_run_dir

        own = tuned_run_dir(cfg, chosen, keep)
        again = command(f"embedrec train -c {sh_quote(str(write_path))}")  # (its path quoted once: a review)
        log.info("wrote %s; %s trains into %s", Path(write_path), again,
                 f"its own run {own} (the run in {cfg.run.dir} is kept)" if Path(own) != Path(cfg.run.dir) else
                 f"{own}, the run this config names (the choice is the current config's model: where that run is "
                 "trained, there is nothing to train again)" if keep else
                 f"{own}, the run this config already names (the same choice)")
