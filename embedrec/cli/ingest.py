"""embedrec ingest."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, command_line, common, log, main, progress_enabled, wrote
from embedrec.cli.options import PathParam, refuse_empty, report
from embedrec.cli.state import _State

# how the source is read: what train never reads again (the dataset holds the result), so the "train on it with"
# hint leaves them out (a first-hour review: it repeated --set data.cache_dir=...)
READING_ONLY = ("data.source", "data.format", "data.movies", "data.test_source", "data.valid_source", "data.columns.", "data.separator",
                "data.movies_separator", "data.header",
                "data.encoding", "data.decimal", "data.genre_separator", "data.cache_dir", "data.id_type",
                "data.timestamp_unit", "data.timestamp_format", "data.id_case", "data.event_weights", "data.missing",
                "data.bad_lines",
                "data.repeats", "data.duplicates", "split.")  # the split is made here: train reads it from the dataset

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


def source_given(ctx, param, value):
    """SOURCE as given; an empty one (an unset variable) is a usage error, not the default source (a red team)."""
    refuse_empty(value, param, ctx, "release name, a file or folder path, or - for standard input")
    return value


@main.command(context_settings=CONTEXT)
@click.argument("source", required=False, callback=source_given)
@click.option("-o", "--output", type=PathParam(file_okay=False), help="Dataset directory (data.prepared).")
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset directory.")
@click.option("--format", "fmt", type=click.Choice(["text", "table", "json"]), default="text",
              help="text (or table, as the other commands name it): the summary on stderr; json: the summary as "
                   "JSON on stdout instead (log lines, such as the train command to run next, stay on stderr; -q drops "
                   "them).")
@common
def ingest(cfg: Config, source, output, overwrite, fmt):
    """Turn a MovieLens release or a ratings file into a clean, indexed, split dataset.

    SOURCE is a release name (ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, ml-latest-small, ml-latest),
    a local .zip or folder of any MovieLens or RecBole layout or of the Netflix Prize's files (combined_data_N.txt
    or training_set/ with movie_titles.csv), a ratings CSV/TSV/Parquet, or - for stdin.
    It overrides data.source.

    \b
    Examples:
      embedrec ingest ml-100k
      embedrec ingest ratings.csv -o data/prepared/mine --set data.columns.user=uid
      embedrec ingest ml-1m --set split.method=user_time --format json

    \b
    Your own file: the keys it may need (configs/default.yaml says each one's values):
      data.id_type=auto          text ids ('u1', '034545104X'); the default, int, refuses them
      data.columns.user=NAME     its columns, where not user_id, movie_id, rating, timestamp
        (and .movie, .rating, .timestamp; =null: the file has none)
      data.separator=';'         else found from the first line (',', tab, ';' or '|')
      data.encoding=latin-1      else utf-8
      data.repeats=sum           a play or click log: each pair's rows summed into a count
      data.min_rating=1          ratings below 1 kept apart, not learnt (a 0 that means 'not rated')
      split.test=0.1             the test share (split.valid the validation share)
      split.method=given         your own split: its test rows from data.test_source=FILE
    e.g. embedrec ingest BX-Book-Ratings.csv -o data/prepared/books --set data.id_type=auto
           --set 'data.separator=;' --set data.encoding=latin-1 --set data.columns.rating=Book-Rating
    """
    from embedrec import api
    from embedrec.data.dataset import current_generation
    from embedrec.ingestion import format_summary

    configured = cfg.data.prepared  # where the same config alone (train -c ...) reads the dataset from
    configured_run = cfg.run.dir  # and the run it trains into
    cfg = api.ingest_config(source or None, cfg, output=output or None)
    before = current_generation(cfg.data.prepared)
    if overwrite and source is None and before is not None:
        _refuse_default_over_other(cfg, api.other_source(cfg))
    try:
        summary = api.prepare(cfg, overwrite=overwrite, progress=progress_enabled())
        if not _State.quiet:
            if fmt != "json":  # json's summary is on stdout (a first-hour review: said twice, once on each)
                click.echo(format_summary(summary), err=True)
            if cfg.data.prepared != configured:  # the same options alone would not find it: say them with it
                # and a run of its own unless the config names one (a first-hour review: a plain train of another
                # dataset replaced the ML-100K run at the default run.dir)
                run = [] if cfg.is_set("run.dir") else ["--run", _own_run(cfg.data.prepared, configured_run)]
                log.info("train on it with: %s", command_line("train", ["--set", f"data.prepared={cfg.data.prepared}",
                                                                        *run], skip=READING_ONLY))
            if before is not None and current_generation(cfg.data.prepared) != before:
                # a first-hour review: titles added with --overwrite, then recommend showed none, without a word
                log.info("replaced the dataset %s had: a run trained on it serves what it held (its movies and "
                         "titles, each user's ratings) until it is trained again", cfg.data.prepared)
        wrote(cfg.data.prepared)
        if fmt == "json":
            report(json.dumps(summary, indent=2))
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM (sigterm_as_interrupt)
        now = current_generation(cfg.data.prepared)
        if now is None or now == before:
            raise
        # after the dataset was published (its new generation is current): done, not a failed job to rerun,
        # which would then be refused as 'already exists' (a red team: exit 143, "nothing half-written")
        from embedrec.errors import signal_name, stop_signal

        log.warning("%s came after the dataset was published: %s holds the new one", signal_name(stop_signal(e))
                    if stop_signal(e) else "Ctrl-C", cfg.data.prepared)


def _refuse_default_over_other(cfg, recorded: str | None) -> None:
    """``ingest --overwrite`` with no SOURCE over a dataset ingested from another source (``recorded``,
    ``api.other_source``) is refused with the command that ingests that source again into the same folder (a
    first-hour pass: following train's advice it read ML-100K into a click log's folder; a review: the command
    left -o out, so it wrote elsewhere)."""
    from embedrec.errors import UsageError

    if recorded is None:
        return
    from embedrec.api import ingested_with

    _, _, sets = ingested_with(cfg.data.prepared)  # the settings it was ingested with, but those given now (a review)
    sets = [a for kv in sets if kv.split("=", 1)[0] not in cfg.set_keys for a in ("--set", kv)]
    again = command_line("ingest", [*sets, recorded, "-o", str(cfg.data.prepared), "--overwrite"],
                         skip=("data.prepared",))
    raise UsageError(f"no SOURCE given, so ingest would read {cfg.data.source} (data.source's default) into "
                     f"'{cfg.data.prepared}', which holds a dataset ingested from '{recorded}'; give its source "
                     f"again: {again}" + (" < FILE (it was read from standard input)" if recorded == "-" else ""))


def _own_run(prepared: str, default_run: str) -> str:
    """runs/NAME for the dataset at ``prepared``: never the config's run.dir (the ML-100K run by default), the
    dataset's own folder, or a run trained on other data (then NAME-2, NAME-3, ...; a review: a second ML-100K
    split in alt/ml-100k was pointed at the default run)."""
    from embedrec.run_inputs import trained_on

    here = Path(prepared).resolve()
    name = Path(prepared).name
    for i in range(1, 100):
        cand = Path("runs") / (name if i == 1 else f"{name}-{i}")
        if cand.resolve() in (Path(default_run).resolve(), here) or here in cand.resolve().parents \
                or cand.resolve() in here.parents:
            continue
        if not cand.exists():
            return str(cand)
        if trained_on(cand) == here:
            return str(cand)  # this dataset's own run: trained again (any other folder: another name)
    return str(Path("runs") / f"{name}-{os.getpid()}")

