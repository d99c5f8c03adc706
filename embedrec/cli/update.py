"""embedrec update-users."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, common, main
from embedrec.cli.options import RUN, PathParam

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


@main.command("update-users", context_settings=CONTEXT)
@click.option("--ratings", required=True, type=PathParam(dir_okay=False, allow_dash=True,
                                                         kind="file path, or - for standard input"),
              help="Ratings made since training: CSV/TSV/Parquet of user_id,movie_id[,rating][,timestamp], read as "
                   "ingest reads a ratings table (data.columns, data.separator, data.header); - for stdin.")
@RUN
@click.option("--strict", is_flag=True, help="Refuse a rating of a movie the model does not know (default: left "
                                             "out with a warning).")
@common
def update_users(cfg: Config, ratings, run_dir, strict):
    """Re-solve the run's users named in a ratings file with those newer ratings, and serve them.

    Each user is re-solved as the run's training solved it (an als run: its recorded weights plus the new
    ratings, the movie factors fixed), as 'recommend --user U --liked ...' does for one request; the run's
    new model folder holds the new vectors and every new rating among the user's seen movies, so recommend,
    export --topk-all and --explain serve them. Users the run does not know are refused (their lists come
    from 'recommend --liked/--rated' until the run is trained again). Prints the update's record (JSON).

    \b
    Examples:
      embedrec update-users --ratings since.csv --run runs/ml-100k
      embedrec recommend --user 196 --run runs/ml-100k      # serves the updated user
    """
    from embedrec.api import update_users as update

    record = update(run_dir or None, ratings, cfg, strict=strict)
    click.echo(json.dumps(record, indent=2))
