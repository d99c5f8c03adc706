"""embedrec predict."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, common, log, main
from embedrec.cli.options import FMT, NO_HEADER, RUN, LineFile, check_no_header

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


@main.command(context_settings=CONTEXT)
@click.option("--pairs", type=LineFile(), required=True, help="CSV/TSV (or ';'-separated) user,movie pairs, header optional; - for stdin.")
@click.option("--strict", is_flag=True, help="Fail on an unknown user or movie instead of scoring it from the biases.")
@RUN
@FMT
@NO_HEADER
@common
def predict(cfg: Config, pairs, strict, run_dir, fmt, no_header):
    """The model's score for (user, movie) pairs: the predicted rating for explicit models.

    Further columns of the input (e.g. the true rating) are passed through between movie_id and fallback,
    named as in the input's header line (col3, col4, ... without one).

    A user or movie not in the training data is scored from what the model has, as Surprise does (explicit:
    mean + movie bias for an unknown user, mean + user bias for an unknown movie, the mean for both; implicit:
    the movie bias where the model has one, else empty); the fallback column says which: none, user_unknown,
    movie_unknown or both.

    \b
    Example:
      printf '196,242\\n186,302\\n' | embedrec predict --pairs - --format csv
    """
    from embedrec.api import open as open_model
    from embedrec.api import predict_lines
    from embedrec.output import batch_done, resolve_format, write_rows

    check_no_header(no_header, fmt)
    model = open_model(run_dir or cfg.run.dir, cfg)
    columns, rows = predict_lines(model, pairs, pairs.name, strict, batch=cfg.recommend.batch_size,
                                  on_batch=batch_done)
    given = 0

    def counted(rows):
        nonlocal given
        for row in rows:
            given += 1
            yield row

    write_rows(counted(rows), columns, resolve_format(fmt), header=not no_header)
    if not given:  # a header alone said nothing of why (as recommend --users says)
        log.warning("%s: no pair given (the input held no user,movie line)", pairs.name)
    if not model.engine.explicit:  # after the rows: an error stays the only line
        log.info("note: this run ranks (model.objective: implicit), so score is its ranking score (higher is "
                 "better, comparable within this run), not a rating; for ratings train with "
                 "--set model.objective=explicit (on ML-100K: -c configs/ml100k-explicit.yaml)")
