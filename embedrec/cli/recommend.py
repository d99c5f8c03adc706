"""embedrec recommend: one user, many users (streamed), similar movies, a new user."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, common, log, main
from embedrec.cli.options import (
    FMT,
    NO_HEADER,
    RUN,
    TEXT,
    LineFile,
    check_no_header,
    only_for,
    parse_liked,
    parse_pairs,
    parse_rated,
    usage_error,
)

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


@main.command(context_settings=CONTEXT)
@click.option("--user", "user", type=TEXT, help="A user id from the source data.")
@click.option("--users", "users_file", type=LineFile(), help="A file of user ids, one per line; - for stdin.")
@click.option("--movie", "movie", type=TEXT, help="A movie id or title words: similar movies.")
@click.option("--liked", type=TEXT, help="Comma-separated movies a new user liked (as top ratings): ids, or titles as --movie "
              "takes them.")
@click.option("--rated", type=TEXT, help="Comma-separated movie=rating pairs for a new user, e.g. 50=5,181=4 or 'fargo=5'.")
@click.option("--ordered", is_flag=True, help="--liked or --rated lists the new user's history oldest first: the "
              "latest movies weigh most (recommend.foldin_recency; als models).")
@click.option("--user-features", "user_features", type=TEXT,
              help="A new user from demographics (feature models), e.g. age=25,gender=F,occupation=writer.")
@click.option("-k", "k", type=click.IntRange(1), help="How many movies (recommend.k).")
@click.option("--include-seen", is_flag=True, help="Also recommend movies the user rated in training.")
@click.option("--genre", "genres", multiple=True, type=TEXT, help="Only movies of this genre (repeatable: any of them).")
@click.option("--year-min", type=int, help="Only movies from this year on.")
@click.option("--year-max", type=int, help="Only movies up to this year.")
@click.option("--strict", is_flag=True, help="With --users: fail on an unknown id instead of skipping it.")
@click.option("--fallback", type=click.Choice(["none", "popular"]), help="For unknown users (recommend.fallback).")
@RUN
@FMT
@NO_HEADER
@common
def recommend(cfg: Config, user, users_file, movie, liked, rated, ordered, user_features, k, include_seen, genres,
              year_min, year_max, strict, fallback, run_dir, fmt, no_header):
    """Top-K movies for a user, many users, a new user, or movies similar to a movie.

    score: for explicit models the predicted rating, clipped to the rating scale (as in predict); for implicit
    models the model's ranking score (higher is better, comparable within one run); with --movie the cosine
    similarity to that movie; with --fallback popular the movie's number of training ratings.

    --users reads ids as they come (a header line 'user_id' is skipped) and flushes each batch of
    recommend.batch_size answers; --set recommend.batch_size=1 answers line by line (for a co-process).

    \b
    Examples:
      embedrec recommend --user 196 -k 5
      cut -f1 users.txt | embedrec recommend --users - --format jsonl
      embedrec recommend --movie "toy story" --format csv
      embedrec recommend --liked 50,181,172 --genre Comedy
      embedrec recommend --liked "toy story,fargo,scream" --ordered
      embedrec recommend -c configs/ml100k-explicit.yaml --rated 50=5,181=4,313=1
      embedrec recommend --run runs/ml-100k-features --user-features age=25,gender=F,occupation=writer
    (the last two need their runs trained: --rated's stars count only on an explicit model such as that config's,
    the default model takes every movie rated as liked; the last needs user features: docs/commands.md, "Side
    features")
    """
    from embedrec.api import open as open_model
    from embedrec.errors import UsageError
    from embedrec.output import resolve_format, write_rows

    for opt, value in (("--user", user), ("--movie", movie), ("--liked", liked), ("--rated", rated),
                       ("--user-features", user_features)):
        if value is not None and not value.strip():
            raise UsageError(f"{opt} is empty; give a value, e.g. {opt} " + {"--user": "196", "--movie": "'star wars'",
                             "--liked": "50,181,172", "--rated": "50=5,181=4", "--user-features": "age=25,gender=F"}[opt])
    modes = [x for x in (user, users_file, movie, liked or rated, user_features) if x]
    if len(modes) != 1:
        raise UsageError("give exactly one of --user, --users, --movie, --liked/--rated, or --user-features")
    mode = next(opt for opt, x in (("--user", user), ("--users", users_file), ("--movie", movie), ("--liked", liked),
                                   ("--rated", rated), ("--user-features", user_features)) if x)
    only_for(mode, {"--include-seen": (include_seen, ("--user", "--users", "--liked", "--rated")),
                    "--fallback": (fallback is not None, ("--user", "--users")),
                    "--strict": (strict, ("--users",)),
                    "--ordered": (ordered, ("--liked", "--rated"))})
    if ordered and liked and rated:
        usage_error("--ordered takes one history, oldest first: give --liked or --rated, not both")
    if strict and fallback == "popular":
        usage_error("--strict and --fallback popular conflict: one fails on an unknown user, the other answers "
                    "it; give one of them")
    check_no_header(no_header, fmt)
    k = k or cfg.recommend.k
    fallback = fallback or cfg.recommend.fallback
    model = open_model(run_dir or cfg.run.dir, cfg)
    fmt = resolve_format(fmt)
    filters = {"genres": genres, "year_min": year_min, "year_max": year_max}
    if users_file is not None:  # streamed in batches: rows as they come, through the fast writers
        missing = "error" if strict else "popular" if fallback == "popular" else "skip"
        triples = model.recommend_stream(users_file, k, missing=missing, exclude_seen=not include_seen,
                                         batch_size=cfg.recommend.batch_size, on_batch=sys.stdout.flush,
                                         name=getattr(users_file, "name", "<input>"), **filters)
        answered = [0]

        def counted(items):
            for item in items:
                answered[0] += 1
                yield item

        model.write_stream(counted(triples), sys.stdout, fmt, header=not no_header,
                           fallback_column=fallback == "popular")
        if not answered[0]:  # a header alone on stdout said nothing of why (a first-hour review: < /dev/null)
            log.warning("%s: no user answered (the input held no user id%s)", getattr(users_file, "name", "<input>"),
                        "" if fallback == "popular" else " this model knows")
        _explicit_note(model)
        return
    if user is not None:  # an unknown user: the library's error, or its warning with the most popular movies
        res = model.recommend([user], k, missing="popular" if fallback == "popular" else "error",
                              exclude_seen=not include_seen, **filters)
    elif movie is not None:
        res = model.similar(_found(model, movie), k, **filters)
    elif user_features:
        res = model.recommend_features(dict(parse_pairs(user_features, "--user-features", "age=25,gender=F")), k,
                                       **filters)
    else:
        liked_ids = _resolved(model, parse_liked(liked), "--liked") if liked else []
        given = parse_rated(rated) if rated else {}
        pairs = list(zip(_resolved(model, list(given), "--rated"), given.values()))
        # as pairs: two spellings of one movie (a title and its id) are the library's refusal, not a rating replaced
        res = model.recommend_new(liked_ids, pairs, k, ordered=ordered, exclude_seen=not include_seen, **filters)
        ratings = dict(pairs)
    marked = user is not None and fallback == "popular"  # which rows are the most popular list, in every format
    write_rows(res.to_rows(fallback_column=marked), res.columns + (["fallback"] if marked else []), fmt,
               header=not no_header)
    filtered = any(v is not None for v in (year_min, year_max)) or bool(genres)
    _short_note(res, k, movie is not None, include_seen or user_features is not None, filtered,
                lambda: model.engine.catalogue.allowed(genres, year_min, year_max, say=False).size == 0)
    if movie is None and not (user is not None and res.unknown):  # not for --fallback popular's list
        _explicit_note(model)
    if rated:
        _rated_note(model, liked_ids, ratings, res.left_out, ordered)
    if ordered and not model.uses_order:
        _unordered_note(model)


def _resolved(model, tokens: list[str], opt: str) -> list:
    """The movie ids of --liked/--rated/--movie tokens (ids, or title words: Model.resolve_movies), each one found by
    its title said on stderr with that title: 'batman' is one of four."""
    ids, by_title = model.resolve_movies(tokens)
    for token, movie in by_title.items():
        _said_title(model, opt, token, movie)
    return ids


def _found(model, token: str):
    """The movie --movie names: an id, or title words (find_movie, where a number may be a title's words too)."""
    movie = model.find_movie(token)
    if str(movie) != token.strip():
        _said_title(model, "--movie", token, movie)
    return movie


def _said_title(model, opt: str, token: str, movie) -> None:
    m = model.movie(movie)
    log.info("%s '%s': movie %s, %s%s", opt, token.strip(), movie, m["title"],
             "" if m["year"] is None else f" ({m['year']})")


def _short_note(res, k: int, similar: bool, seen_kept: bool, filtered: bool, none_pass) -> None:
    """A list shorter than -k, said on stderr: it holds every movie that could be in it. Not when no movie
    passes the filters (``none_pass()``, asked only of a short filtered list: the filter is not run again for
    every answer), which the library said (a first-hour review: said twice)."""
    got = len(res.movie_ids[0]) if len(res) else k
    if got < k and filtered and none_pass():
        return
    if got < k and not res.fallback[0]:
        which = "every other movie" if similar else "every movie"
        if not (similar or seen_kept):
            which += " the user has not rated" if res.query_ids[0] is not None else " not among the given ones"
        which += " that matches the filters" if filtered else ""
        log.info("note: %s movie%s, fewer than the %s asked for: that is %s (movies without training ratings are "
                 "never recommended)", f"{got:,}", "" if got == 1 else "s", f"{k:,}", which)


def _explicit_note(model) -> None:
    """After a user's list from an explicit run (not before: an error stays the only line)."""
    if model.engine.explicit:
        log.info("note: this run predicts ratings (model.objective: explicit), so its lists rank by predicted "
                 "rating, which favours movies few users rated; for top-K lists train a ranking model "
                 "(model.objective: implicit, the default)")


def _unordered_note(model) -> None:
    """After a new user's list with --ordered from a model that takes the movies as a set: why."""
    e = model.engine
    loss = e.loss
    if loss == "als" and e.training_ratings.get("solve"):
        why = "recommend.foldin_recency is 0"
    elif loss == "als":
        why = "this als run was saved before embedrec recorded its users' solve; train it again to use the order"
    else:
        why = f"this model ({loss or 'its loss unknown'}) takes a new user's movies as a set; only als models " \
              "(model.loss: als, the default) weigh the latest most"
    log.info("note: --ordered changed nothing: %s", why)


def _rated_note(model, liked: list, rated: dict, left_out: dict, ordered: bool = False) -> None:
    """After a new user's list from an implicit run, where the --rated values changed nothing: training took each
    rating the dataset kept as a positive interaction, weighted by its value only with train.als_rating_weight >
    0, and fold-in takes them the same way. What the fold-in left out (below data.min_rating) the library said
    (``left_out``)."""
    from embedrec.errors import shorten

    e = model.engine
    if e.explicit or e.training_ratings["rating_weight"] > 0:
        return
    if left_out:
        log.info("note: this model (model.objective: implicit) takes every rating it kept as a positive interaction, "
                 "so the other --rated values make no difference")
        return
    # no movie left out: the same movies liked give the same vector and the same exclusions
    low = e.training_ratings["min_rating"]
    same = ",".join(str(m) for m in [*liked, *rated])
    log.info("note: this model (model.objective: implicit) was trained on %s, so the --rated values make no "
             "difference: --liked %s%s gives the same list", "every rating as a positive interaction" if low is None
             else f"the ratings from {low:g} up (data.min_rating) as positive interactions", shorten(same),
             " --ordered" if ordered else "")
