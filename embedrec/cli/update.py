"""embedrec update-users."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, common, main, progress_enabled, unless_published, wrote, wrote_nothing
from embedrec.cli.options import RUN, PathParam, report

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config

log = logging.getLogger("embedrec")
# the config keys update-users applies: how the ratings file is read, and where the run is
READS = ("data.columns.", "data.format", "data.separator", "data.header", "data.encoding", "data.decimal",
         "data.missing", "data.bad_lines", "data.timestamp_unit", "data.timestamp_format", "data.id_case",
         "data.event_weights", "run.")


@main.command("update-users", context_settings=CONTEXT)
@click.option("--ratings", required=True, type=PathParam(dir_okay=False, allow_dash=True,
                                                         kind="file path, or - for standard input"),
              help="Ratings made since training: CSV/TSV/Parquet of user_id,movie_id[,rating][,timestamp], read as "
                   "ingest reads a ratings table (data.columns, data.separator, data.header, ...: by default as the "
                   "run's dataset was ingested, its columns' names too, each column also read under the default "
                   "name); - for stdin.")
@RUN
@click.option("--strict", is_flag=True, help="Refuse a rating of a movie the model does not know (default: left "
                                             "out with a warning).")
@click.option("--no-new-users", is_flag=True, help="Refuse a file naming a user the run does not know, nothing "
                                                   "written (default: such users are added).")
@click.option("--new-movies", is_flag=True, help="Add the movies the run does not know, each solved from the "
                                                 "ratings of the users it knows (implicit's partial_fit_items), "
                                                 "before the users are; the indexes are built again (default: "
                                                 "their ratings are left out with a warning).")
@common
def update_users(cfg: Config, ratings, run_dir, strict, no_new_users, new_movies):
    """Re-solve the run's users named in a ratings file with those newer ratings, add the new ones, and serve them.

    Each user is re-solved as the run's training solved it (an als run: its recorded weights plus the new
    ratings, the movie factors fixed), as 'recommend --user U --liked ...' does for one request; a user the
    run does not know is added, its vector the one 'recommend --rated ...' folds in from the same ratings. The
    run's new model folder holds the new vectors and every new rating among the users' seen movies, so
    recommend, export --topk-all and --explain serve them. With --new-movies a movie the run does not know is
    added too, solved as training solves a movie from the users it knows that rated it, so it is listed and
    similar-able from then on. Prints the update's record (JSON).

    The ratings file is read as the run's dataset was ingested (its data.columns.*, data.separator, data.header,
    data.encoding, data.decimal, data.missing), unless the config or --set gives them; a column the file names
    user_id, movie_id, rating or timestamp is read so too.

    \b
    Examples:
      embedrec update-users --ratings since.csv --run runs/ml-100k
      embedrec recommend --user 196 --run runs/ml-100k      # serves the updated user
      embedrec update-users --ratings since.csv --no-new-users   # known users only
      embedrec update-users --ratings since.csv --new-movies     # and today's new movies
    """
    from embedrec.api import update_users as update

    _warn_unapplied(cfg)
    record = unless_published(run_dir or cfg.run.dir, "the updated model", lambda: update(
        run_dir or None, ratings, cfg, strict=strict, new_users=not no_new_users, new_movies=new_movies,
        progress=progress_enabled()))
    if record is None:  # stopped after it was published: said
        return
    # published: a report that fails says so, not to add the ratings again; else that nothing was written
    (wrote if record.get("model_folder") is not None else wrote_nothing)(run_dir or cfg.run.dir)
    report(json.dumps(record, indent=2))


def _warn_unapplied(cfg: Config) -> None:
    """One warning for the --set keys update-users does not apply (a red team: --set train.als_reg=5 was taken in
    silence): the re-solve is the run's recorded solve, whatever train.* and model.* say; the keys of a trained
    model that differ from the run's (run_inputs.MODEL_KEYS) are warned of by the CLI's run readers already
    (app._warn_unread_sets)."""
    from embedrec.run_inputs import MODEL_KEYS, _shown

    keys = sorted(k for k in cfg.set_keys if not k.startswith(READS) and not k.startswith(MODEL_KEYS)
                  and not any(o != k and o.startswith(k + ".") for o in cfg.set_keys))
    if not keys:
        return

    def value(key: str):
        now = cfg
        for part in key.split("."):
            now = getattr(now, part, None)
        return _shown(now)

    them = "it" if len(keys) == 1 else "them"
    log.warning("--set %s: no effect on 'embedrec update-users', which re-solves users as the run's training solved "
                "them (its recorded solve), adds new ones as 'recommend --rated' folds one in, and takes from the "
                "config only how to read --ratings (data.columns.*, "
                "data.format, data.separator, data.header, data.encoding, data.decimal, data.missing, data.bad_lines, "
                "data.timestamp_unit, data.timestamp_format, data.id_case, data.event_weights); leave %s out",
                ", --set ".join(f"{k}={value(k)}" for k in keys), them)
