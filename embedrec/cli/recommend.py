"""embedrec recommend: one user, many users (streamed), similar movies, similar users, a movie's audience (the users
most likely to take to it), a new user (from movies, demographics, or both)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, common, main, progress_enabled
from embedrec.cli.options import (
    FMT,
    FROM_CONFIG,
    NO_HEADER,
    RUN,
    TEXT,
    LineFile,
    OptionalCount,
    check_no_header,
    one_stdin,
    parse_exclude,
    parse_liked,
    parse_movie_list,
    parse_pairs,
    parse_rated,
    parse_user_list,
    stdin_bytes,
    usage_error,
    with_comma_hint,
)
from embedrec.errors import ArtifactError, NotFoundError, UsageError

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


@main.command(context_settings=CONTEXT)
@click.option("--user", "user", type=TEXT, help="A user id from the source data (with --liked/--rated: its ratings "
              "since training, its vector re-solved with them).")
@click.option("--users", "users_file", type=LineFile(), help="A file of user ids, one per line; - for stdin (@FILE, "
              "@- too).")
@click.option("--movie", "movie", type=TEXT, help="A movie id or title words: similar movies.")
@click.option("--movies", "movies_file", type=LineFile(), help="A file of movies, one a line (an id or title words, as "
              "--movie takes it); - for stdin (@FILE, @- too): each one's similar movies, a batch of lines at a "
              "time as they come (--strict: once the whole input is read).")
@click.option("--similar-users", "similar_users", type=TEXT, metavar="USER",
              help="A user id: the users most like them (cosine of the user vectors), with the movies both rated.")
@click.option("--audience", "audience", type=TEXT, metavar="MOVIE",
              help="A movie id or title words: the users most likely to take to it (those whose own lists score it "
              "highest), its raters left out (--include-seen: kept); or @FILE, a movie a line (@-: stdin): each "
              "one's, in the file's order.")
@click.option("--liked", type=TEXT, help="Comma-separated movies a new user liked (as top ratings): ids, or titles as --movie "
              "takes them; or @FILE, one per line (or a table with a title column, as Letterboxd's films.csv). "
              "The fewer given, the more the most popular movies weigh in the list (als models: "
              "train.als_newuser_prior).")
@click.option("--rated", type=TEXT, help="Comma-separated movie=rating pairs for a new user, e.g. 50=5,181=4 or "
              "'fargo=5' (on a model of a click log, its rows summed into counts: movie=count); or @FILE: a "
              "CSV/TSV whose title, year and rating columns are found by name (Letterboxd's and IMDb's exports as "
              "they are, title,rating) or MOVIE=RATING a line, its ratings mapped onto the model's scale where "
              "they are on another (IMDb's 1-10). A file's titles no movie matches are left out and said (--strict: "
              "refused); titles typed here are refused.")
@click.option("--prior", "prior", type=TEXT, default="auto", show_default=True,
              help="With --liked/--rated (or --user/--users for the users update-users added): the most popular "
              "movies' weight in the new user's list (als models): auto (the run's, chosen on valid for the number of movies given: "
              "train.als_newuser_prior), off (the given movies' neighbourhood alone) or a weight.")
@click.option("--ordered", is_flag=True, help="--liked or --rated lists the new user's history oldest first: the "
              "latest movies weigh most (recommend.foldin_recency; als models).")
@click.option("--user-features", "user_features", type=TEXT,
              help="A new user from demographics (feature models), e.g. age=25,gender=F,occupation=writer; with "
              "--liked/--rated, a new user told both.")
@click.option("-k", "k", type=click.IntRange(1), help="How many movies (recommend.k).")
@click.option("--include-seen", is_flag=True, help="Also recommend movies the user rated in training (train and valid, and those rated below data.min_rating; the test split is held out, so its movies are never excluded: ingest with --set split.test=0 to serve on every rating). With --audience: list the movie's raters too.")
@click.option("--genre", "genres", multiple=True, type=TEXT, help="Only movies of this genre (repeatable: any of them).")
@click.option("--year-min", type=int, help="Only movies from this year on.")
@click.option("--year-max", type=int, help="Only movies up to this year.")
@click.option("--exclude", type=TEXT, help="Movies no list may hold (bought, watched elsewhere): comma-separated "
              "ids or titles as --movie takes them, or @FILE with one per line; an @FILE headed user_id,movie_id "
              "leaves each user's own out of its list alone. With --audience or --similar-users: user ids (opt-outs).")
@click.option("--candidates", type=TEXT, help="The only movies a list may hold (in stock, licensed): comma-separated "
              "ids or titles, or @FILE with one per line. With --audience or --similar-users: user ids (a segment).")
@click.option("--strict", is_flag=True, help="With --users, --movies, --liked or --rated: fail on an unknown id (or a "
              "title of an @FILE that no movie matches) instead of skipping it.")
@click.option("--fallback", type=click.Choice(["none", "popular"]), help="For unknown users (recommend.fallback).")
@click.option("--diversify", "diversify", type=float, metavar="LAMBDA",
              help="More diverse lists: each re-ranked by maximal marginal relevance from its top 5 x k, picking "
              "each time the movie of the largest LAMBDA x score (rescaled to 0-1) - (1 - LAMBDA) x its largest "
              "cosine (movie embeddings) to those picked; 1 is the model's own list, smaller more diverse (0.7: "
              "docs/commands.md has the trade-off). Scores stay the model's, so a list is not in score order.")
@click.option("--explain", type=OptionalCount(), is_flag=False, flag_value=FROM_CONFIG, metavar="[N]",
              help="With --user, --users, --liked or --rated (als models; an explicit model's --liked/--rated): a last "
              "column 'because' naming the N rated movies that add most to each listed movie's score, with their "
              "shares of it (N: recommend.explain, 3).")
@RUN
@FMT
@NO_HEADER
@common
def recommend(cfg: Config, user, users_file, movie, movies_file, similar_users, audience, liked, rated, ordered, prior, user_features, k,
              include_seen, genres, year_min, year_max, exclude, candidates, strict, fallback, diversify, explain,
              run_dir, fmt, no_header):
    """Top-K movies for a user, many users, a new user, movies similar to a movie; users like a user, or a movie's
    audience.

    score: for explicit models the predicted rating, clipped to the rating scale (as in predict); for implicit
    models the model's ranking score (higher is better, comparable within one run); with --movie the cosine
    similarity to that movie; with --fallback popular the movie's number of training ratings.

    --similar-users lists users, not movies: user_id_query, rank, user_id, score (the cosine of the two users'
    vectors), both_rated (the movies both rated in the rows the model was trained on, and those update-users
    added) and rated (the listed user's count of them); embedrec history --user shows what each rated (rated
    counts its rows but the test split's).

    --audience lists users too: movie_id, rank, user_id, score (the score that user's own list gives the movie,
    as predict gives the pair), the users who rated it left out: who to show a movie to.

    --explain adds 'because': an als score split exactly over the user's rated movies, the N that add most
    named with their share of the score (json/jsonl: a list of {movie_id, title, contribution, share}).

    --users reads ids as they come (a header line 'user_id' is skipped) and flushes each batch of
    recommend.batch_size answers; --set recommend.batch_size=1 answers line by line (for a co-process).

    \b
    Examples:
      embedrec recommend --user 196 -k 5
      cut -f1 users.txt | embedrec recommend --users - --format jsonl
      embedrec recommend --movie "toy story" --format csv
      embedrec recommend --similar-users 196 -k 5
      embedrec recommend --audience "toy story" -k 100 --format csv
      embedrec recommend --audience @new-releases.txt -k 1000 --format csv
      embedrec recommend --liked 50,181,172 --genre Comedy
      embedrec recommend --liked "toy story,fargo,scream" --ordered
      embedrec recommend --rated @ratings.csv -k 20
      embedrec recommend --user 196 --liked 50,181
      embedrec recommend --user 196 --explain
      embedrec recommend -c configs/ml100k-explicit.yaml --rated 50=5,181=4,313=1
      embedrec recommend --run runs/ml-100k-features --user-features age=25,gender=F,occupation=writer
      embedrec recommend --run runs/ml-100k-features --user-features age=25,gender=F --liked 50,181
    (the last three need their runs trained: --rated's stars count only on an explicit model such as that config's,
    the default model takes every movie rated as liked; the last two need user features: docs/commands.md, "Side
    features")
    """
    from embedrec.answers import Request
    from embedrec.api import open as open_model
    from embedrec.output import resolve_format, write_rows

    for opt, value in (("--user", user), ("--movie", movie), ("--similar-users", similar_users),
                       ("--audience", audience), ("--liked", liked),
                       ("--rated", rated),
                       ("--user-features", user_features), ("--exclude", exclude), ("--candidates", candidates)):
        if value is not None and not value.strip():
            raise UsageError(f"{opt} is empty; give a value, e.g. {opt} " + {"--user": "196", "--movie": "'star wars'",
                             "--similar-users": "196", "--audience": "'star wars'", "--liked": "50,181,172", "--rated": "50=5,181=4",
                             "--user-features": "age=25,gender=F",
                             "--exclude": "50,181 or @FILE", "--candidates": "50,181 or @FILE"}[opt])
    one_stdin({"--users": users_file, "--movies": movies_file, "--liked": liked, "--rated": rated, "--exclude": exclude,
               "--candidates": candidates, "--audience": audience})
    # which mode: Request.mode's rule and refusals (exactly one mode; --ordered with one history; no movie filter
    # for --similar-users), asked before the run is opened, of the options as given
    # (and the options that apply to some modes only, Request._applies: the library's rule, Model.answer's too)
    asked = Request(user=user, users=users_file, movie=movie, movies=movies_file, similar_users=similar_users,
                    audience=audience, liked=liked, rated=rated,
                    user_features=user_features, ordered=ordered, genres=genres, year_min=year_min, year_max=year_max,
                    exclude=(exclude,) if exclude else (), candidates=candidates, include_seen=include_seen,
                    fallback=fallback, strict=strict, prior=prior, explain=explain, diversify=diversify)
    try:
        asked.checked_mode()
    except UsageError as e:  # options that do not go together: said as click says its own
        usage_error(e.cli_message())
    check_no_header(no_header, fmt)
    if diversify is not None:  # refused before the run is opened, as --prior's
        from embedrec.serve.diversify import lambda_arg

        lambda_arg(diversify)
    if prior.strip().lower() != "auto":  # its value refused before the run is opened and the titles resolved
        from embedrec.serve.prior import given_weight

        given_weight(prior)
    try:
        model = _answered(fmt, lambda: open_model(run_dir or cfg.run.dir, cfg))  # (a stop as the run opens: [] too)
    except ArtifactError as e:
        if user_features and e.raw.startswith("no trained model"):  # (a first-hour review: training that run as
            # told made a model without features, refused next)
            raise ArtifactError(f"{e.raw}; --user-features needs a model trained with user features: docs/commands.md, "
                                "'Side features', says how") from None
        raise
    fmt = resolve_format(fmt)
    liked_items = told_file(liked, "--liked") or parse_liked(liked) if liked else None
    rated_items = told_file(rated, "--rated") or parse_rated(rated, model.engine.rated_example) if rated else None
    users_listed = similar_users is not None or audience is not None  # lists of users: --exclude/--candidates
    bar = UsersBar(users_file if users_file is not None and users_bar_shown(users_file) else None, strict)
    try:
        answer = _answered(fmt, lambda: model.answer(Request(
            user=user, users=users_file, movie=movie, movies=movies_file, similar_users=similar_users,
            audience=tuple(parse_movie_list(audience, "--audience", _own_columns(model, audience)))
            if audience and audience.startswith("@") else audience, liked=liked_items,
            rated=rated_items, k=k or cfg.recommend.k,
            user_features=dict(parse_pairs(user_features, "--user-features", "age=25,gender=F")) if user_features
            else None,
            fallback=fallback, strict=strict, include_seen=include_seen, ordered=ordered,
            genres=genres, year_min=year_min, year_max=year_max, batch_size=cfg.recommend.batch_size,
            exclude=(tuple(parse_user_list(exclude, "--exclude", _own_columns(model, exclude))) if users_listed
                     else _exclude(parse_exclude(exclude, _own_columns(model, exclude)))) if exclude else (),
            candidates=tuple((parse_user_list if users_listed else parse_movie_list)(
                candidates, "--candidates", _own_columns(model, candidates))) if candidates else None,
            on_batch=bar.batch_done, name=getattr(users_file if users_file is not None else movies_file, "name",
                                                  "<input>"),
            explain=None if explain is None else cfg.recommend.explain if explain == FROM_CONFIG else explain,
            prior=prior, diversify=diversify)))
    except (UsageError, NotFoundError) as e:  # a title with a comma, split into two items: say so
        if model.engine.movie_ids.dtype.kind in "iu" and not any(model.engine.titles) or \
                isinstance(liked_items, os.PathLike) or isinstance(rated_items, os.PathLike):  # (a file, stdin:
            # no title or id to split)
            raise  # (the error says the run has no titles to search)
        hinted = with_comma_hint(e, "--liked", liked_items, liked) if liked_items else e
        if hinted is e and rated_items:
            hinted = with_comma_hint(e, "--rated", list(rated_items), rated)
        if hinted is e:
            raise
        raise hinted from None
    if answer.stream is not None:  # streamed in batches: rows as they come, through the fast writers
        with bar.shown(answer):
            model.write_stream(answer.stream, sys.stdout, fmt, header=not no_header,
                               query_column=answer.query_column, fallback_column=answer.fallback_column,
                               because_column=explain is not None)
        given = answer.skipped  # ids, not a header or comments (a review: a header alone failed)
        if not answer.answered and given:  # a review: a cron job fed the wrong ids got a header and exit 0
            raise NotFoundError(f"{getattr(users_file, 'name', '<input>')}: no user answered: none of its {given:,} "
                                f"id{'s' if given > 1 else ''} is a user this model knows (each is said above); "
                                "check the ids and the run, or answer unknown users with «--fallback popular»")
    else:  # the fallback column: which rows are the most popular list, in every format; because: a list in JSON
        write_rows(answer.rows(because_as_text=fmt not in ("json", "jsonl")), answer.columns, fmt,
                   header=not no_header)
    answer.log_notes()



def _own_columns(model, text: str) -> tuple:
    """The run's own (user, movie) column names (its data.columns: 'customer', 'sku' for a log ingested so), which an
    @FILE's header may use as well as 'user_id' and 'movie_id'; () for a value typed on the command line, or a run
    without its config."""
    if not text.startswith("@"):
        return ()
    cfg = model.config
    return () if cfg is None else (cfg.data.columns.user, cfg.data.columns.movie)


def _exclude(got: list | dict) -> tuple | dict:
    """--exclude's movies as the Request takes them: a tuple of movies for every list, or {user: movies} (a file
    of (user, movie) pairs: each user's own)."""
    return got if isinstance(got, dict) else tuple(got)


def _answered(fmt: str, answer):
    """``answer()``, where a stop (Ctrl-C, SIGTERM) before it returns leaves a ``--format json`` output the empty
    array, as a stop before a stream's first row does (a red team: `--movies` killed while it read its input left
    0 bytes, not JSON; a diff review: the same as the run opened): the run's opening and the answer, before any
    row is written."""
    try:
        return answer()
    except KeyboardInterrupt:
        if fmt == "json":  # (as given: 'json' is never the terminal's default)
            with contextlib.suppress(OSError, ValueError):  # a closed or broken stdout: nothing more to write
                sys.stdout.write("[]\n")
        raise


# a --users bar is drawn once the answers have run this long: a short run, or lines typed one by one, draw none
USERS_BAR_DELAY_S = 2.0


def users_bar_shown(lines) -> bool:
    """Whether ``recommend --users`` shows its bar: bars on (a terminal, no -q), the answers not on that terminal
    themselves (stdout elsewhere: the rows are the progress there, and a bar among them would cut into them) and
    the ids not typed at a terminal (a scale review: 100K ids from a file answered for 35 s without a word)."""
    return progress_enabled() and not sys.stdout.isatty() and not lines.from_terminal()


def told_file(text: str, option: str = "--rated") -> os.PathLike | None:
    """``--liked @FILE`` or ``--rated @FILE``: the file (read by the library, serve.userfile), else None. ``@-``:
    standard input, read here whole (serve.userfile.ReadFile; a file named '-': @./-)."""
    if not text.startswith("@"):
        return None
    if not text[1:].strip():
        raise UsageError(f"'{text}': give a file after '@', e.g. @ratings.csv")
    if text[1:].strip() == "-":
        from embedrec.serve.userfile import ReadFile

        return ReadFile(stdin_bytes(option))
    return Path(text[1:])


class UsersBar:
    """The bar of ``recommend --users``, moved as each batch is answered (``batch_done``, after the batch's rows
    were written and stdout flushed): over the bytes read of a regular file (its size known: a fraction and the
    time left), the users answered beside them; over the users answered alone otherwise (a pipe: nothing is read
    ahead to count it; --strict, which reads every id before the first answer). ``lines``: the --users input
    (cli.options._Lines), None for no bar."""

    def __init__(self, lines, strict: bool = False):
        self.lines, self.tick, self.answer = lines, None, None
        self.span = lines.regular() if lines is not None and not strict else None
        self.told = 0

    @contextlib.contextmanager
    def shown(self, answer):
        from embedrec.bars import step

        desc = None if self.lines is None else f"--users {self.lines.name}"
        if self.span is None:
            bar = step(desc, None, "users answered", delay=USERS_BAR_DELAY_S)
        else:
            bar = step(desc, max(self.span[1] - self.span[0], 0), "B", scale=True, delay=USERS_BAR_DELAY_S)
        with bar as self.tick:
            self.answer = answer
            yield
            self.moved()  # (the end: what the last batch left unread, blank lines or comments, read too)
        self.tick = None

    def batch_done(self) -> None:
        from embedrec.output import batch_done

        batch_done()
        self.moved()

    def moved(self) -> None:
        if self.tick is None:
            return
        if self.span is None:
            now = self.answer.answered
            self.tick(now - self.told)
        else:
            now = self.lines.offset() - self.span[0]
            self.tick(now - self.told, note=f"{self.answer.answered:,} users answered")
        self.told = now
