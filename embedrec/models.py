"""The model of the public API: ``Model``, a trained run opened for questions (ids in, ids out; its answers'
types are in results.py, the arguments it checks in argcheck.py). Each method keeps its signature and docstring
here, where ``help(er.Model)`` shows them, and calls the module of its concern: models_recommend.py (top-k lists
for users and movies), models_stream.py (a stream of user ids, and writing the answers), models_scores.py (pair
scores and their parts: predict, explain), models_lookup.py (what the arguments name: k, the movie filters,
movies by title), models_offline.py (evaluate and the exports), serve/history.py and serve/similar_users.py (a
user's history, its similar users). ``TrainedModel``, a fitted model in memory that ``save()`` publishes, is a
``Model`` too (trained.py; how ``train`` publishes one is publish.py). ``api`` builds these; they import nothing
above them. See api.py for the workflow (load_config, ingest, train, open).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from embedrec import models_lookup, models_offline, models_recommend, models_scores, models_stream
from embedrec.argcheck import read_only as _read_only
from embedrec.errors import UsageError, shorten
from embedrec.model.factors import Factors
from embedrec.models_lookup import k_arg
from embedrec.models_scores import ONE_PAIR
from embedrec.results import (  # noqa: F401 (api.py's public types)
    Audience,
    Explanation,
    History,
    Predictions,
    Recommendations,
    SimilarUsers,
    StreamAnswer,
)
from embedrec.run_layout import CONFIG, METRICS, run_of
from embedrec.serve.recommender import Recommender

if TYPE_CHECKING:  # annotations only: no import at run time
    import pandas as pd
    import torch

    from embedrec.answers import Answer

Missing = Literal["error", "skip", "popular"]  # recommend's missing= (data.ids.MISSING)
TitleMissing = Literal["error", "skip"]  # a title's, and similar's and similar_users' (models_lookup.MISSING)
PredictMissing = Literal["fallback", "popular", "error", "skip"]  # predict's (models_scores.PREDICT_MISSING)


class Model:
    """A trained model that speaks ids: recommend, recommend_new, similar, popular, predict, evaluate (``answer``:
    ``embedrec recommend``'s question, routed to one of them); and what
    ``embedrec export`` writes of it: export, topk_all, plot_map.

    Built over a ``recommend.Recommender`` (row numbers, the search); ``er.open`` gives one over a run's files,
    ``er.train`` a TrainedModel over arrays in memory. Both answer through the same code."""

    def __init__(self, engine: Recommender):
        if not isinstance(engine, Recommender):  # a red team: er.Model('runs/x') failed at its first use
            raise UsageError(f"Model() takes a loaded Recommender, not {shorten(repr(engine), 40)}; open a run with "
                             "er.open(run_dir), or train one with er.train(ds, cfg)")
        self._engine = engine

    @property
    def engine(self) -> Recommender:
        if self._engine is None:
            saved = getattr(self, "_saved", None)  # a TrainedModel's folder, once save() published it
            if hasattr(self, "_saved") and saved is None:  # trained in memory, never saved: no run to open again
                raise UsageError("this model was closed, and it was never saved, so no run holds it: train it again "
                                 "(er.train), or save it first (model.save()) and er.open its run after a close")
            where = f"er.open({str(saved.parent)!r})" if saved is not None else "er.open"
            raise UsageError(f"this model was closed; open the run again ({where}) to use it")
        return self._engine

    def close(self) -> None:
        """Let go of the run folder this model reads (its shared lock, which keeps a later ``train`` of the same
        run from pruning it) and of its arrays; the model is unusable afterwards. Also ``with er.open(...) as m:``.
        Results it gave keep what they hold."""
        engine, self._engine = self._engine, None
        hold = getattr(getattr(engine, "run", None), "hold", None)
        if hold is not None:
            hold.close()

    def __copy__(self):
        """``copy.copy(model)``: a model over the same arrays that holds the run folder open on its own (a review: the
        copy shared the original's lock, which ``close()`` let go under it, so a later train pruned the folder it
        read). ``copy.deepcopy`` reads everything into memory and holds nothing, as a pickle does."""
        import copy
        import dataclasses

        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        e = self._engine
        if e is not None and e.run is not None and e.run.hold is not None:
            from embedrec.fsutil.locks import FolderHold

            e.run.check_here("its files")  # a folder already gone: said as a question of it would say it
            try:
                hold = FolderHold(e.run.path)
            except OSError:  # removed between the check and the lock
                e.run.check_here("its files")
                raise
            new._engine = copy.copy(e)
            new._engine.run = dataclasses.replace(e.run, hold=hold)
        return new

    def __enter__(self):
        _ = self.engine  # a closed model is refused here, not at its first question (a red team)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._engine is None:
            return f"<{type(self).__name__}: closed>"
        e = self.engine
        saved = getattr(self, "_saved", None)  # a TrainedModel's run folder once save() published it
        where = f" from '{e.run.path}'" if e.run is not None else f" saved to '{saved}'" if saved is not None \
            else " (in memory)"
        kind = "explicit" if e.explicit else "implicit"
        return f"<{type(self).__name__}: {kind}, {e.P.shape[0]:,} users x {e.Q.shape[0]:,} movies x dim {e.Q.shape[1]}{where}>"

    @property
    def config(self):
        """The Config this model was trained with, the selection's choices in it (``model.dim``,
        ``train.als_reg``, ...): a run's ``config.yaml``, checked against its manifest; None for a model with
        neither (a review: an opened run's settings and metrics were out of reach from Python)."""
        if getattr(self, "_config", None) is None and self.engine.run is not None:
            import yaml

            from embedrec.config import config_from_dict

            values = yaml.safe_load(self._run_file(CONFIG))
            self._config = config_from_dict(values) if isinstance(values, dict) else None
        return getattr(self, "_config", None)

    @property
    def metrics(self) -> dict | None:
        """What ``train`` measured of this model (the dict ``embedrec train --format json`` prints: each split's
        model and baseline metrics, the epochs, the seconds): a run's ``metrics.json``; None without one."""
        if getattr(self, "_metrics", None) is None and self.engine.run is not None:
            from embedrec.fsutil.files import loads_json

            self._metrics = loads_json(self._run_file(METRICS))
        return getattr(self, "_metrics", None)

    def _run_file(self, name: str) -> bytes:
        run = self.engine.run
        raw = run.read_verified(run.path / name)
        return raw if raw is not None else (run.path / name).read_bytes()  # above the size read on open: checked there

    @property
    def factors(self) -> Factors:
        """The model's embeddings and biases, as read-only views: a notebook's in-place edit would change what
        this model answers (a red team)."""
        import dataclasses

        f = self.engine.factors
        return dataclasses.replace(f, user=_read_only(f.user), movie=_read_only(f.movie),
                                   user_bias=_read_only(f.user_bias), movie_bias=_read_only(f.movie_bias))

    @property
    def user_ids(self) -> np.ndarray:
        """The user ids by row, a read-only view (a red team: ``rng.shuffle(m.user_ids)`` made recommend(196)
        answer another user's list under 196); ``.copy()`` for one to change."""
        return _read_only(self.engine.user_ids)

    def torch_module(self) -> torch.nn.Module:
        """The model as a PyTorch module (``embedrec.model.mf.MatrixFactorization``, eval mode) whose
        ``forward(user_rows, movie_rows)`` gives the scores this model serves (before clipping to the rating
        scale); rows map to ids through ``user_ids`` / ``movie_ids``. Imports torch."""
        from embedrec.model.mf import MatrixFactorization

        return MatrixFactorization.from_factors(self.engine.factors)

    @property
    def n_users(self) -> int:
        return self.engine.factors.n_users

    @property
    def n_movies(self) -> int:
        return self.engine.factors.n_movies

    @property
    def movie_ids(self) -> np.ndarray:
        """The movie ids by row, a read-only view (as user_ids)."""
        return _read_only(self.engine.movie_ids)

    @property
    def uses_order(self) -> bool:
        """Whether ``recommend_new(..., ordered=True)`` weighs a new user's latest movies most (als models); the
        other models take the movies as a set."""
        return self.engine.uses_order()

    def recommend(self, users, k: int | None = None, *, missing: Missing | None = None, exclude_seen: bool = True,
                  genres: Iterable[str] = (), year_min: int | None = None,
                  year_max: int | None = None, exclude: Iterable = (),
                  candidates: Iterable | None = None, prior="auto",
                  diversify: float | None = None) -> Recommendations:
        """Top-k movies for each user id (one id or many), best first, movies the user gave in training (train
        and valid) excluded unless ``exclude_seen=False``. ``exclude``: movie ids no list may hold (bought,
        watched elsewhere, out of stock; as implicit's ``filter_items``; ids this model does not know are ignored; a
        list, not the command line's ``@FILE``: a file's ids are ``[line.strip() for line in open(path)]``),
        ``candidates``: the only movie ids a list may hold (in stock, licensed; as implicit's ``items``; None: every
        movie; ids this model does not know are counted in one warning), as ``genres``, ``year_min`` and
        ``year_max`` filter the catalogue for every method that lists movies. ``exclude={user: [movie ids]}``:
        each user's own movies, left out of that user's list alone (implicit's per-user ``user_items``: what users
        did since training; here and in :meth:`recommend_stream` only).

        ``missing``: what an id not in the training data gets: 'error' (NotFoundError naming it), 'skip' (left
        out of the result), 'popular' (the most popular movies, scored by their number of ratings); None: the
        config's ``recommend.fallback`` ('popular' there, else 'error'), as ``embedrec recommend`` answers.
        ``prior``: the new users' popularity prior in the list of a user ``update-users`` added (a new user told its
        ratings once): 'auto' the run's weight for its movies, 'off' (0) none, a number that weight, as
        :meth:`recommend_new` takes it; a trained user's list has none (UsageError for any but 'auto').
        ``diversify``: a more diverse list on request, a lambda in (0, 1] (None or 1: the list as the model ranks
        it): maximal marginal relevance picks the k from the top 5 x k the same filters pass, each time the movie
        of the largest lambda x its score (rescaled to [0, 1] over them) - (1 - lambda) x its largest cosine (of
        the movie embeddings) to a movie already picked; each keeps its own score, so the list is not in score
        order (``recommend --diversify``; serve.diversify)."""
        return models_recommend.recommend(self, users, k, missing=missing, exclude_seen=exclude_seen,
                                          genres=genres, year_min=year_min, year_max=year_max,
                                          exclude=exclude, candidates=candidates, prior=prior, diversify=diversify)

    def answer(self, request) -> Answer:
        """``embedrec recommend``'s question (an :class:`embedrec.answers.Request`: a user, many users, a movie's
        similar movies, a user's similar users, a new user) answered by the method for its mode: an
        :class:`embedrec.answers.Answer`, whose ``result`` (or ``stream``) holds the rows (``columns`` and
        ``rows()``: as the command writes them) and whose ``log_notes()`` says, once they are written, what the
        command says after them (a list shorter than k, an explicit model's lists, rated values an implicit model
        ignores)."""
        from embedrec.answers import Request, answer

        if not isinstance(request, Request):
            raise UsageError(f"answer: give an embedrec.answers.Request, not {shorten(repr(request), 40)}")
        return answer(self, request)

    def recommend_stream(self, lines: Iterable[str | int], k: int | None = None, *, missing: Missing = "skip",
                         exclude_seen: bool = True, genres: Iterable[str] = (), year_min: int | None = None,
                         year_max: int | None = None, batch_size: int = 4096, on_batch=None,
                         name: str = "<input>", exclude: Iterable = (),
                         candidates: Iterable | None = None, explain: int | None = None,
                         prior="auto", diversify: float | None = None) -> Iterator[tuple]:
        """``recommend`` for a stream of user ids, one per line (a file, stdin, a socket): answered in batches of
        ``batch_size`` as the lines come, so a slow producer gets each batch's answers before it sends the next;
        ``on_batch()`` is called after each batch. Yields (user id, movie ids, scores) per user (a
        :class:`StreamAnswer`); give them to ``write_stream``. ``missing``: 'skip' (logged), 'popular', or 'error'
        (NotFoundError naming name:line). A line of a file that starts with '#' is answered when its id is known,
        else skipped as a comment; the items of a list are ids, never comments. ``explain=N``: each answer's
        ``explanations`` too, one :class:`~embedrec.results.Explanation` per listed movie naming the N rated movies
        that add most to its score, made as its batch is answered (as ``recommend(users).explain(N)``; an als
        model's only, and a run that records its users' solve: refused at the call otherwise; None for a list of
        the most popular movies); ``write_stream(..., because_column=True)`` writes them. ``prior``: the weight of
        the new users' prior in the lists of the users ``update-users`` added ('auto': the run's; 'off' or a
        number: theirs alone, the trained users' lists as they are; refused at the call where the run holds none),
        as ``recommend(prior=)`` takes it. ``diversify``: each list re-ranked as ``recommend(diversify=)``'s;
        ``exclude={user: [movie ids]}``: each user's own, as ``recommend``'s."""
        return models_stream.recommend_stream(self, lines, k, missing=missing, exclude_seen=exclude_seen,
                                              genres=genres, year_min=year_min, year_max=year_max,
                                              batch_size=batch_size, on_batch=on_batch, name=name,
                                              exclude=exclude, candidates=candidates, explain=explain, prior=prior,
                                              diversify=diversify)

    def write_stream(self, triples: Iterable[tuple], out, fmt: str = "tsv", header: bool = True, *,
                     query_column: str | None = None, fallback_column: bool = False,
                     because_column: bool = False) -> None:
        """Write ``recommend_stream``'s answers (or a ``Recommendations``) to the text file ``out`` as csv, tsv,
        jsonl (fast writers that encode each movie once) or table/json, with the columns of
        ``Recommendations.to_rows``. The first column is ``query_column``: a Recommendations' own (``similar``'s
        is movie_id_query), else user_id. ``fallback_column``: a last column ``fallback``, 'popular' for an
        answer of the most popular movies (missing='popular'), else 'none'. ``because_column``: a last column
        ``because``, the rated movies behind each listed movie (``recommend_stream(..., explain=N)``'s answers;
        ``recommend --explain``'s cell in csv, tsv and a table, a list of {movie_id, title, contribution, share} in
        json and jsonl; empty, or null, for a fallback's list)."""
        return models_stream.write_stream(self, triples, out, fmt, header, query_column=query_column,
                                          fallback_column=fallback_column, because_column=because_column)

    def recommend_new(self, liked: Iterable | Path | pd.DataFrame = (),
                      rated: dict | Iterable[tuple] | Path | pd.DataFrame | None = None, k: int | None = None, *,
                      ordered: bool = False, exclude_seen: bool = True, genres: Iterable[str] = (),
                      year_min: int | None = None, year_max: int | None = None,
                      exclude: Iterable = (), candidates: Iterable | None = None,
                      strict: bool = False, user=None, user_features: dict | None = None,
                      prior="auto", missing: TitleMissing | None = None,
                      diversify: float | None = None) -> Recommendations:
        """Top-k movies for someone not in the training data, from movie ids they liked and/or {movie id:
        rating} (folded in against the fixed movie factors); the given movies are excluded unless
        ``exclude_seen=False``. ``user_features``: the new user's demographics too ({'age': 25, 'gender': 'F'}; a
        model trained with features.user, opened from a run, as :meth:`recommend_features` takes them): the
        movies are folded in on top of the demographics' vector, the model's own solve finding what they add
        to it (LightFM's new user, told both); with no movie (``liked=[]``) the list is
        ``recommend_features``'. ``user``: a known user's id, these the ratings it made since training: its vector
        is re-solved from its training ratings (as the run's final solve weighed them, for an als model; as a new
        user's fold-in over the movies it rated, for the other implicit ones) plus these, the movies fixed, and its
        seen movies are excluded too (implicit's ``recalculate_user``; ``ordered`` does not apply). ``ordered=True``: ``liked`` or ``rated`` (one of them) lists the user's history
        oldest first, and an als model weighs the latest movies most (``recommend.foldin_recency``; on held-out
        ML-100K users told their earliest 80%, NDCG@10 +18%); ``uses_order`` says whether this model does. A movie
        is an id or title words, as :meth:`resolve_movies` takes them ('star wars'; ambiguity raises UsageError,
        words that match no title NotFoundError). An unknown movie id is left out with a warning and listed in the result's ``unknown`` (NotFoundError where
        none is known, or with ``strict=True``). ``liked`` or ``rated`` may be a file (a ``pathlib.Path``), as
        ``recommend --liked @FILE``/``--rated @FILE`` read it: liked a movie a line; rated a CSV/TSV whose title,
        year and rating columns are found by name (Letterboxd's and IMDb's exports as they are, ``title,rating``)
        or ``MOVIE=RATING`` a line, or a DataFrame of such columns; its ratings mapped onto this model's scale where
        they are on another (IMDb's 1-10, Letterboxd's 0.5-5). ``missing``: what a title no movie matches (or
        several do) gets: 'error' (raised), 'skip' (left out, said in one warning: 'matched 11 of 15 movies; not
        found: ...'; none matched: the error); None, 'skip' for a file and 'error' otherwise.
        A rating not finite, or outside the model's rating scale, is refused (UsageError naming the movie, the
        value and the scale), as update_users refuses it; a file's are read on their own scale.
        An implicit model leaves out a rating below its dataset's
        data.min_rating, as training did: said in a log note and in the result's ``left_out``. ``prior``: the
        most popular movies' weight in a new user's list (an als model's; serve.prior): 'auto' the run's own for
        the number of movies given (train.als_newuser_prior), 0 none (the neighbourhood of the movies given, as
        implicit's fold-in lists it), or a weight (standard deviations of the user's model scores).
        ``diversify``: the list re-ranked as ``recommend(diversify=)``'s."""
        return models_recommend.recommend_new(self, liked, rated, k, ordered=ordered,
                                              exclude_seen=exclude_seen, genres=genres, year_min=year_min,
                                              year_max=year_max, exclude=exclude, candidates=candidates,
                                              strict=strict, user=user, user_features=user_features, prior=prior,
                                              missing=missing, diversify=diversify)

    def explain(self, user=None, movie=None, n: int = 10, *, liked: Iterable | Path | pd.DataFrame = (),
                rated: dict | Iterable[tuple] | Path | pd.DataFrame | None = None,
                ordered: bool = False, strict: bool = False, prior="auto") -> Explanation | list[Explanation]:
        """Why ``user`` (an id; None for a new user given by ``liked``/``rated``, as :meth:`recommend_new` takes
        them, ``ordered`` and ``strict`` too) gets the score it does for ``movie`` (an id, or title words as
        :meth:`similar` takes them; a list of them gives a list): an :class:`~embedrec.results.Explanation`, the
        score split exactly over the movies the user rated, its ``n`` largest parts listed (the rest summed), with
        the movie's bias (recent popularity, where the run adds it) and the remainder (what the served vector
        holds beyond that exact solve), so that the parts add up to the score ``predict`` gives (as implicit's
        ``explain``; Hu, Koren & Volinsky 2008). An als model's (the default), and an explicit model's new user's
        (a ridge solve: its bias is mu + b_m, and a predicted rating's clip to the scale is a part of its own,
        ``clip``); UsageError for another, whose scores have no such split; a known user's needs the run to record its users' solve (a
        ``train`` of this version does, in one process or on ranks; ArtifactError, saying so, where the run does not), a new user's never
        does. ``prior``: a new user's popularity prior, as :meth:`recommend_new` takes it."""
        return models_scores.explain(self, user, movie, n, liked=liked, rated=rated, ordered=ordered,
                                     strict=strict, prior=prior)

    def recommend_features(self, values: dict, k: int | None = None, *, genres: Iterable[str] = (),
                           year_min: int | None = None, year_max: int | None = None,
                           exclude: Iterable = (), candidates: Iterable | None = None,
                           diversify: float | None = None) -> Recommendations:
        """Top-k movies for a new user from demographics alone ({'age': '25', 'gender': 'F'}); models trained with
        features.user, opened from a run. ``diversify``: the list re-ranked as ``recommend(diversify=)``'s."""
        return models_recommend.recommend_features(self, values, k, genres=genres, year_min=year_min,
                                                   year_max=year_max, exclude=exclude, candidates=candidates,
                                                   diversify=diversify)

    def similar(self, movie, k: int | None = None, *, genres: Iterable[str] = (), year_min: int | None = None,
                year_max: int | None = None, exclude: Iterable = (),
                candidates: Iterable | None = None, missing: TitleMissing = "error") -> Recommendations:
        """The k movies most similar to ``movie`` by cosine similarity of their embeddings: an id, or text as
        :meth:`find_movie` takes it (an id of the model where it is one exactly, else title words: 'star wars', as
        ``recommend --movie`` does), or a list of those (a list for each); the query column is
        ``movie_id_query``, the queries the result's ``query_ids``. ``missing``: what a query naming no movie of the
        model (an unknown id, words no title holds) gets: 'error' (NotFoundError naming it), 'skip' (left out and
        listed in the result's ``unknown``, as :meth:`recommend`'s missing='skip' leaves an unknown user out)."""
        return models_recommend.similar(self, movie, k, genres=genres, year_min=year_min, year_max=year_max,
                                        exclude=exclude, candidates=candidates, missing=missing)

    def similar_users(self, user, k: int | None = None, *, missing: TitleMissing = "error",
                      candidates: Iterable | None = None, exclude: Iterable = ()) -> SimilarUsers:
        """The k users most like ``user`` (an id, or a list of ids: a list for each) by cosine similarity of their
        vectors, as :meth:`similar` ranks movies (implicit's ``similar_users``), the user itself and users with no
        trained vector left out: a :class:`~embedrec.results.SimilarUsers`, whose ``both_rated`` and ``rated``
        say how many movies each listed user rated and how many of those ``user`` rated too (in the rows the model
        was trained on), so an answer can be checked. ``missing``: what an id not in the training data, or one with
        no trained vector, gets: 'error' (NotFoundError naming it), 'skip' (left out and listed in the result's
        ``unknown``, as :meth:`recommend`'s missing='skip'). ``candidates``: the only user ids a list may hold
        (implicit's ``users=``; None: every user), ``exclude``: user ids no list may hold (its ``filter_users=``);
        ids the model does not know are ignored, counted in a warning."""
        from embedrec.serve.similar_users import of_ids

        models_recommend.similar_missing(missing, "similar_users")
        k = k_arg(self, k)
        e = self.engine
        return SimilarUsers(e, *of_ids(e, user, k, missing, candidates, exclude))

    def audience(self, movie, k: int | None = None, *, exclude_seen: bool = True, candidates: Iterable | None = None,
                 exclude: Iterable = (), missing: TitleMissing = "error") -> Audience:
        """The k users most likely to take to ``movie`` (an id, or title words as :meth:`similar` takes them, or a
        list of those: a list for each): those whose own lists score it highest, each with the score its list and
        :meth:`predict` give the pair (a ranking model's score; an explicit model's predicted rating), best first,
        equal scores in user row order (an explicit model's tied at its scale's top by the prediction before the
        clip, as a list orders its movies): an :class:`~embedrec.results.Audience` (movie_id, rank, user_id, score).
        recommend's question turned round, for a campaign or a new release's first viewers (implicit leaves it to
        ``item_factors[i] @ user_factors.T``). Its raters (in the rows the model was trained on, those
        update-users added, and a twin's: the same film under another id) are left out unless
        ``exclude_seen=False``, as recommend leaves the movie out of their lists; users without a trained vector are
        never listed. ``candidates``: the only user ids a list may hold (a segment; None: every user),
        ``exclude``: user ids no list may hold; ids the model does not know are ignored, counted in a warning.
        ``missing``: what a query naming no movie of the model gets, as :meth:`similar`'s. A movie no training
        rating named is refused (UsageError): nothing to score it by. Cost: one pass over the user table and one over
        the seen pairs a movie (ML-100K: 0.1 ms; 1M users x 100M pairs: 0.07 s; docs/commands.md)."""
        return models_recommend.audience(self, movie, k, exclude_seen=exclude_seen, candidates=candidates,
                                         exclude=exclude, missing=missing)

    def history(self, user, *, splits: Iterable[str] | None = None, sort: str | None = None, k: int | None = None,
                dataset_dir: str | Path | None = None, moved_to: str | Path | None = None) -> History:
        """What ``user`` (an id of the dataset) rated, with titles: a :class:`~embedrec.results.History` of each
        movie, its rating (a click log's count), its time where the data has times, and the part of the dataset it
        is in (``splits``, default all: 'train', 'valid', 'test', and 'rated_below' where the dataset keeps such
        pairs: rated below data.min_rating, never trained on; 'update' where update-users gave the user a movie,
        its rating and time NaN: the run keeps the movie, not the file's rating). ``sort``: 'time' newest first (the default where
        the data has times), 'rating' highest first (the default otherwise; equal ones newest first), or 'title';
        ``k``: the first k rows only. Read from the prepared dataset the run was trained on (the join of
        ``ds.split_frame()`` and :meth:`movie` a user would write), checked to be that dataset;
        ``dataset_dir``: read it from there instead (moved or copied since; as :meth:`evaluate`'s); ``moved_to``
        (``embedrec history``'s data.prepared): read it from there only where the recorded folder holds no
        dataset now (moved), or another one where ``moved_to`` holds the run's, else the recorded one, said in a
        warning. A user the dataset's cleaning left out (its
        every rating below data.min_rating: rated_below_unknown) has its 'rated_below' rows, read by its id; a user
        update-users added to the run is in no split of the dataset: its rows are its 'update' ones, beside those
        'rated_below' ones where the cleaning had left it out. An id neither in the run nor left out by the cleaning
        raises NotFoundError; a dataset that is gone, or another one, ArtifactError."""
        from embedrec.serve.history import user_history

        e = self.engine
        return History(e, *user_history(e, user, splits=splits, sort=sort, k=k, dataset_dir=dataset_dir,
                                        moved_to=moved_to, dataset=self._history_dataset))

    def _history_dataset(self) -> tuple:
        """(the dataset path the run records, its files' fingerprint, the run's name for messages): where
        :meth:`history` reads a user's ratings."""
        run = self.engine.run
        if run is None:
            raise UsageError("history: this model has no run folder to find its dataset by; save it and open the run "
                             "(er.open(run_dir)), or read the dataset with er.load_dataset(path).split_frame()")

        rec = run.manifest.get("dataset") or {}
        return rec.get("path"), rec.get("files_fingerprint"), str(run_of(run.path))

    def find_movie(self, query: str | int) -> int | str:
        """A movie id from an id, an exact title, 'Title (year)' or title words; ambiguity raises UsageError."""
        return models_lookup.find_movie(self, query)

    def resolve_movies(self, tokens: Iterable, missing: TitleMissing = "error") -> tuple[list, dict]:
        """Movie ids for ``tokens`` as ``recommend --liked/--rated`` reads them, each by :meth:`find_movie`'s rule
        (as ``recommend --movie`` and :meth:`similar` read theirs): an id of the model where the text is one exactly,
        else title words ('star wars', 'Fargo (1996)', '50' for '50 First Dates'; ambiguity raises UsageError),
        else an id (a number, or text no title holds: kept as given, so an unknown one is refused as such later). Returns (the ids in order, {token: id} of those
        found by their title), e.g. ``ids, by_title = m.resolve_movies(['star wars', 181])``, then
        ``m.recommend_new(liked=ids)``. ``missing='skip'``: a title no movie matches (or several do) is left out of
        the ids and said in one warning (every one missed: the first's error)."""
        return models_lookup.resolve_movies(self, tokens, missing)

    def movie(self, movie) -> dict:
        """One movie's row: {'movie_id', 'title', 'year' (each None where unknown), 'genres'}; NotFoundError for an id
        not in the training data."""
        return models_lookup.movie(self, movie)

    def popular(self, k: int | None = None, *, genres: Iterable[str] = (), year_min: int | None = None,
                year_max: int | None = None, exclude: Iterable = (),
                candidates: Iterable | None = None) -> Recommendations:
        """The k movies with the most training ratings (train and valid), scored by that count; where the model
        adds recent popularity (train.als_trend), the movies it scores highest for someone it knows nothing of
        (the most rated in its window, scored by that term)."""
        return models_recommend.popular(self, k, genres=genres, year_min=year_min, year_max=year_max,
                                        exclude=exclude, candidates=candidates)

    def predict(self, pairs: Any = ONE_PAIR, movie: Any = ONE_PAIR, *, missing: PredictMissing = "fallback",
                uid: Any = ONE_PAIR, iid: Any = ONE_PAIR, r_ui: float | None = None) -> Predictions:
        """The score of each (user id, movie id) pair: the predicted rating for explicit models. ``pairs``: tuples,
        a 2-column array, or a DataFrame with the columns user_id and movie_id (or userId/movieId, uid/iid, user/item
        and the like, as ingest and score_lists take them); or one user and its movie as
        Surprise's ``predict(uid, iid)`` takes them, ``predict(196, 242)`` (a first-hour pass: a raw TypeError), or
        its movies, ``predict(196, [242, 302])``; Surprise's keywords too, ``predict(uid=196, iid=242)``, and its
        ``r_ui=None`` (a true rating is not kept: a Predictions has no column for it, so one given is refused).

        ``missing``: 'fallback' (default) answers a pair with an id not in the training data from what the
        model has, as Surprise does: explicit models mu + b_m (unknown user), mu + b_u (unknown movie), mu
        (both); implicit models b_m where they have movie biases, else NaN. The ``fallback`` column says which.
        'popular' is the same as 'fallback' (:meth:`recommend`'s word for what an unknown id gets: an unknown
        user's score is the movie's baseline, its popularity term). 'error' raises NotFoundError; 'skip' leaves the
        pair out."""
        return models_scores.predict(self, pairs, movie, missing=missing, uid=uid, iid=iid, r_ui=r_ui)

    def evaluate(self, split: str = "test", ks: Iterable[int] | None = None, *, dataset_dir: str | Path | None = None,
                 moved_to: str | Path | None = None, device: str | None = None, per_user: bool | str | Path = False,
                 overwrite: bool = False, lists: dict | None = None, metrics=None, against=None,
                 progress: bool = False, notes: bool = True) -> dict:
        """``embedrec evaluate``: metrics on the dataset's ``split`` beside the baselines, as it prints them; ``ks``
        (default: the run's own ``train.eval_k``, what ``train`` printed) the cut-offs. ``dataset_dir``: the
        dataset the run was trained on, read from there (moved or copied since: its fingerprint checks it is that
        data; another dataset, or no dataset there, is refused); ``moved_to`` (``embedrec evaluate``'s --set
        data.prepared): read from there only where the recorded folder holds no dataset now (moved), or another
        one where ``moved_to`` holds the run's, else the recorded one, said in a warning where ``moved_to`` names
        another folder (as :meth:`history`'s); ``device``
        (as train.device) 'cuda' scores on the GPU.
        ``per_user=True``: the result's ``per_user`` holds each ranked user's ranking metrics, a DataFrame (user_id,
        ndcg@10, ..., then the most_popular baseline's, most_popular:ndcg@10, ..., and each of ``lists``',
        NAME:ndcg@10, ...) whose means are the printed ones: join two runs' on user_id for a paired difference; a file
        name (.csv, .tsv or .parquet) instead writes that table to a new file (``overwrite=True``: or over one this
        wrote), whole or not at all, and leaves it out of the result (``embedrec evaluate --per-user FILE``).
        ``lists``: {name: top-K lists} of other recommenders (DataFrames of user_id, movie_id, rank or score, as
        :func:`embedrec.score_lists` takes them), each scored on the same split and users beside the model, under
        its name (``embedrec evaluate --lists FILE``). ``metrics``: the metric names (without @K: 'ndcg',
        'novelty') the ``per_user`` table holds (``embedrec evaluate --per-user FILE --metrics``); the figures
        returned hold every metric.
        ``against``: other trained runs (a run folder, an opened model, a list of them, or a dict {name: one}) scored
        beside the model on the same split, each a row under its folder's name and its per-user columns
        NAME:ndcg@10, ... (``embedrec evaluate --against RUN``); each must have been trained on the same dataset
        and split (its manifest's record of the dataset's files), else UsageError before anything is scored.
        The result's ``paired``: {split: {other: {metric@K: {"difference", "se", "users", "tie"}}}}, the model's
        per-user metric minus each other row's (the baselines, each of ``against`` and of ``lists``), user by user
        over the users both score, its standard error, and whether it is within two SE of 0 (a tie). Where both
        predict ratings (an explicit model against global_mean, biases or an explicit run): ``rmse`` and ``mae``,
        the difference of the overall figures (no SE), and ``user_mse`` and ``user_mae``, each user's mean squared
        (absolute) error minus the other's, averaged over users, with its SE.
        ``progress=True`` shows a bar on stderr over the users of each ranking pass (the model's, the most-popular
        baseline's, each of ``against``'s), as :meth:`topk_all`'s.
        The notes on the figures are logged on the ``embedrec`` logger once they are made, as ``embedrec
        evaluate`` says them (``figure_notes.evaluate_notes``, then a warning where the model does no better than
        a baseline); ``notes=False`` leaves them to the caller (the CLI logs them where its lines go)."""
        return models_offline.evaluate(self, split, ks, dataset_dir=dataset_dir, moved_to=moved_to,
                                       device=device, per_user=per_user, overwrite=overwrite, lists=lists,
                                       metrics=metrics, against=against, progress=progress, notes=notes)

    @contextlib.contextmanager
    def _served(self, call: str) -> Iterator[Recommender]:
        """The Recommender over this model's run, which the exports read (the index files, the popularity, a feature
        model's tables): an opened run's own."""
        yield self.engine

    def export(self, fmt: str, out: str | Path, *, overwrite: bool = False, sample: int | None = None,
               sample_users: int = 0, base_url: str | None = None) -> dict:
        """``embedrec export --to FMT -o OUT``: the embeddings written into the folder ``out`` as ``fmt``:
        'projector' (TensorBoard Embedding Projector files; ``sample`` movies at most, ``sample_users`` users too,
        ``base_url`` the URL the folder will be served from), 'parquet', 'npy' or 'csv' (vectors, biases, ids,
        titles, and model.json: how the terms add up), 'faiss' (the run's index files with their id maps) or
        'torch' (state_dict.pt of the PyTorch module). The folder is written whole or not at all; an existing one
        needs ``overwrite=True`` (and holds only an earlier export's files). Returns what was written. A model from
        ``er.train`` is exported once saved (``model.save(run_dir)``)."""
        return models_offline.export(self, fmt, out, overwrite=overwrite, sample=sample,
                                     sample_users=sample_users, base_url=base_url)

    def topk_all(self, path: str | Path, k: int | None = None, *, overwrite: bool = False,
                 batch_size: int | None = None, device: str | None = None, progress: bool = False,
                 diversify: float | None = None) -> dict:
        """``embedrec export --topk-all PATH``: the top-k movies of every user (``k`` default recommend.k), the rows
        ``recommend`` gives (user_id, rank, movie_id, title, year, genres, score), streamed in batches of
        ``batch_size`` (default recommend.batch_size) to a .parquet or .csv file, or to a folder of Parquet parts
        for a ``path`` without an extension. An existing output needs ``overwrite=True``. ``device='cuda'``
        scores on the GPU (as train.device; default the CPU); ``progress=True`` shows a bar. Under torchrun each rank
        scores its share of the users and rank 0 writes the result. ``diversify``: each list re-ranked as
        ``recommend(diversify=)``'s. Returns the path, the users listed and k (and the lambda, where it re-ranked)."""
        return models_offline.topk_all(self, path, k, overwrite=overwrite, batch_size=batch_size,
                                       device=device, progress=progress, diversify=diversify)

    def plot_map(self, path: str | Path, method: str = "pca", *, overwrite: bool = False) -> dict:
        """``embedrec export --plot PATH``: a 2-D map of the movie embeddings (``method`` 'pca', 'tsne' with
        scikit-learn or 'umap' with umap-learn), coloured by genre, the most-rated titles labelled, in the image
        format the file name's extension picks (.png, .svg, .pdf, ...). An existing file needs
        ``overwrite=True``. Returns the path and the method."""
        return models_offline.plot_map(self, path, method, overwrite=overwrite)
