"""embedrec history: what a user rated, with titles, from the dataset the run was trained on."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, common, main
from embedrec.cli.options import FMT, NO_HEADER, RUN, TEXT, check_no_header, moved_to

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config

log = logging.getLogger("embedrec")

@main.command(context_settings=CONTEXT)
@click.option("--user", "user", type=TEXT, required=True, help="A user id from the source data.")
@click.option("-k", "k", type=click.IntRange(1), help="At most this many movies (default: all of them).")
@click.option("--split", "splits", multiple=True, metavar="NAMES",
              help="Only these parts: train, valid, test, rated_below, update; comma-separated or repeated "
                   "(default: all).")
@click.option("--sort", type=click.Choice(["time", "rating", "title"]),
              help="time: newest first (the default where the data has times); rating: highest first, equal ones "
                   "newest first (the default otherwise); title: A to Z.")
@RUN
@FMT
@NO_HEADER
@common
def history(cfg: Config, user, k, splits, sort, run_dir, fmt, no_header):
    """What a user rated, with titles: each movie, its rating (a click log's count), its time, and the split it is in.

    Read from the prepared dataset the run was trained on (checked to be that dataset; where it has moved, give
    its new folder with --set data.prepared=FOLDER). split: train, valid or test, or rated_below (rated below
    data.min_rating, or a movie the k-core filter dropped: seen, never trained on; the dataset keeps no rating or
    time of those), or update (a movie update-users gave the user, with the rating and time its file gave).
    time: ISO 8601 in UTC, where the data has times. Ratings ingest left out (a valid or test rating of a movie
    with no training rating) are in no split, and not listed.

    \b
    Examples:
      embedrec history --user 196 -k 10
      embedrec history --user 196 --sort rating --split train,valid --format csv
      embedrec history --user 196 --split test --format jsonl
    """
    from embedrec.api import open as open_model
    from embedrec.errors import UsageError
    from embedrec.output import resolve_format, write_rows

    if not user.strip():
        raise UsageError("--user is empty; give a value, e.g. --user 196")
    check_no_header(no_header, fmt)
    parts = [s.strip() for text in splits for s in text.split(",")] if splits else None
    with open_model(run_dir or cfg.run.dir, cfg) as model:
        result = model.history(user, splits=parts, sort=sort, k=k, moved_to=moved_to(cfg))
        write_rows(result.to_rows(), result.columns, resolve_format(fmt), header=not no_header)
    if result.total > len(result):  # what -k left out, said as the library's summary says it (a first-hour review:
        # nothing told 3 listed rows from a user of 51 ratings)
        log.info("%s; -k %d lists the first %d", result.summary, k, len(result))
