"""What the public API's questions answer: ``Recommendations`` (users or movies -> movie ids and scores),
``Predictions`` (pairs -> scores and the fallback used) and ``StreamAnswer`` (one query of a stream), each with
``to_frame()``, iteration and a notebook view. Built by ``models.Model``; numpy only (pandas on ``to_frame``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from embedrec.errors import PositionError, UsageError, shorten
from embedrec.serve.recommender import COLUMNS, FALLBACK_VALUES, Recommender, py_id

if TYPE_CHECKING:  # annotations only
    import pandas as pd


class FrozenList(list):
    """A result's list, read-only: equal to the list it holds, indexed and sliced as one (a slice is a plain
    list), but a change in place raises TypeError (a review: ``r.user_ids.append(x)`` changed the result's length
    and broke its indexing). ``list(x)`` is a copy to change."""

    __slots__ = ()

    def _refuse(self, *args, **kwargs):
        raise TypeError("a result's lists are read-only; copy one to change it: list(...)")

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __reduce__(self):  # pickle and copy: rebuilt whole (list's own way appends, refused here)
        return FrozenList, (list(self),)


def _frozen_array(a) -> np.ndarray:
    """A read-only view of ``a`` (the array given keeps its own flag)."""
    view = np.asarray(a).view()
    view.flags.writeable = False
    return view


class StreamAnswer(tuple):
    """One query's answer, (query id, movie ids, scores), as everywhere in the API; ``rows`` keeps the movie rows
    the fast writers of ``Model.write_stream`` encode from; ``fallback``: True where the query was not in the
    training data and got the most popular movies (missing='popular'; the score is the rating count);
    ``explanations``: where ``recommend_stream`` was asked to ``explain``, one :class:`Explanation` per listed movie,
    in the list's order (None for a fallback's list, and where none was asked)."""

    def __new__(cls, query_id, movie_ids, scores, rows=None, fallback: bool = False, explanations: list | None = None):
        self = super().__new__(cls, (query_id, movie_ids, scores))
        self.rows, self.fallback = rows, bool(fallback)
        self.explanations = explanations
        return self

    def __getnewargs__(self):  # copy and pickle (multiprocessing, joblib): the tuple; ``rows`` is the state
        return tuple(self)

    @classmethod
    def of(cls, query_id, rows, scores, all_movie_ids, fallback: bool = False,
           explanations: list | None = None) -> StreamAnswer:
        """The answer of movie ``rows`` (of a model whose movie ids are ``all_movie_ids``)."""
        return cls(query_id, all_movie_ids[rows], scores, rows, fallback, explanations)


def stream_rows(engine, triples: Iterable[tuple], because: bool = False) -> Iterator[tuple]:
    """(query id, movie rows, scores, fallback, because) from answers of (query id, movie ids, scores): a
    StreamAnswer's own rows and fallback flag, else the ids looked up (answers a caller built or filtered).
    ``because``: each listed movie's :meth:`Explanation.because` from a StreamAnswer's ``explanations`` (None for a
    fallback's list; an answer of a known user without them is a UsageError), else None."""
    for n, t in enumerate(triples, 1):
        if isinstance(t, (str, bytes)) or not isinstance(t, (tuple, list)) or len(t) < 3:
            raise UsageError(f"write_stream: item {n} is {shorten(repr(t), 40)}; give (query id, movie ids, scores) "
                             "tuples, as recommend_stream yields them")
        ids, scores = t[1], t[2]
        if isinstance(ids, (str, bytes)) or np.ndim(ids) != 1:
            raise UsageError(f"write_stream: query {t[0]!r}: movie ids is {shorten(repr(ids), 40)}; give a list of "
                             "movie ids (best first)")
        if scores is None or isinstance(scores, (str, bytes)) or np.ndim(scores) != 1:
            raise UsageError(f"write_stream: query {t[0]!r}: scores is {shorten(repr(scores), 40)}; give one score "
                             "per movie id (a list or array)")
        if len(ids) != len(scores):  # zip would drop the movies past the shorter one (a red team)
            raise UsageError(f"write_stream: query {t[0]!r}: {len(ids)} movie id{'s' * (len(ids) != 1)} but "
                             f"{len(scores)} score{'s' * (len(scores) != 1)}; give one score per movie id")
        rows = getattr(t, "rows", None)
        if rows is None:
            rows, _ = engine.movie_rows(list(t[1]))
            if (np.asarray(rows) < 0).any():
                raise UsageError(f"write_stream: a movie id of query {t[0]!r} is not in this model")
        fallback, items = getattr(t, "fallback", False), None
        if because and not fallback:
            xs = getattr(t, "explanations", None)
            if xs is None or len(xs) != len(ids):
                raise UsageError(f"write_stream: because_column=True, but the answer of query {t[0]!r} holds no "
                                 "explanations of its list; give recommend_stream(..., explain=3)'s answers")
            items = [x.because() for x in xs]
        yield t[0], rows, t[2], fallback, items


class Recommendations:
    """Top-k movies per query: ``query_ids`` (user ids; the movie for ``similar``; None for a new user; also
    ``user_ids`` where the queries are users), and per query ``movie_ids`` and ``scores`` (1-D arrays, best first;
    lists, as filters may leave fewer than k).

    ``unknown`` lists the query ids not in the training data (skipped, or answered with popular movies, where
    ``fallback`` is True); for a new user (``recommend_new``), the movie ids of its history the model does not
    know, left out of the fold-in. ``left_out``: a new user's ratings the fold-in left out, {movie id: rating} (an
    implicit model's below the dataset's data.min_rating, which training never saw; those movies still count as
    rated, so they are not in the list); empty otherwise."""

    def __init__(self, engine: Recommender, query_ids: list, rows: list, scores: list, fallback: list[bool],
                 unknown: list, query_column: str = "user_id", left_out: dict | None = None, solve=None,
                 prior="auto"):
        self._engine, self._rows = engine, [np.asarray(r, dtype=np.int64) for r in rows]
        self.query_ids = FrozenList(query_ids)  # read-only, as the arrays in them (a review)
        self.movie_ids = FrozenList(_frozen_array(engine.movie_ids[r]) for r in self._rows)
        self.scores = FrozenList(_frozen_array(s) for s in scores)
        self.fallback = FrozenList(bool(f) for f in fallback)  # Python bools (json.dumps takes them; numpy's no)
        self.unknown = FrozenList(unknown)
        self.query_column = query_column
        self.left_out = dict(left_out or {})
        self.columns = [query_column, *COLUMNS[1:]]
        self._solve = solve  # recommend_new's als solve (serve.explain.UserSolve), which explain() splits scores by
        self._prior = prior  # Model.recommend's prior= (an added user's list): explain() splits by the same

    @property
    def user_ids(self) -> list:
        """``query_ids`` where the queries are users (recommend, recommend_new, popular: None for a new user or no
        user), under the name that reads best there. A result of movie queries (``similar``) has no user ids: a
        UsageError, also an AttributeError, says to read ``query_ids`` (an architecture review: ``similar(50)``'s
        ``user_ids`` was [50], a movie id)."""
        if self.query_column != "user_id":
            raise _NotUsers(f"user_ids: this result's queries are movies ({self.query_column}: similar()'s), not "
                            "users; read query_ids for the movies asked about, movie_ids for each one's list")
        return self.query_ids

    def __setstate__(self, state: dict) -> None:  # unpickled or deep-copied: its arrays read-only again (a review)
        self.__dict__.update(state)
        self.movie_ids = FrozenList(_frozen_array(a) for a in self.movie_ids)
        self.scores = FrozenList(_frozen_array(a) for a in self.scores)

    def __len__(self) -> int:
        return len(self.query_ids)

    def __iter__(self) -> Iterator[tuple]:
        """(query id, movie ids, scores) per query."""
        return iter(zip(self.query_ids, self.movie_ids, self.scores))

    def __getitem__(self, i: int | slice):
        """The i-th query's (query id, movie ids, scores), as iteration gives them: by position, as a list's items
        (a user's answer by id: ``dict((q, ids) for q, ids, _ in r)[196]``); a slice gives a Recommendations of
        those queries."""
        import operator

        if isinstance(i, slice):  # r[:10]: the first ten queries' answers, a result as this one (its unknown ids
            queries = self.query_ids[i]  # those among them: a review's slice said '1 unknown' of a known user)
            fallback = self.fallback[i]
            whole = i.indices(len(self)) == (0, len(self), 1)  # r[:] keeps them all (the skipped ones too)
            unknown = list(self.unknown) if whole else [q for q, f in zip(queries, fallback) if f and q in self.unknown]
            return Recommendations(self._engine, queries, self._rows[i], self.scores[i], fallback, unknown,
                                   self.query_column, self.left_out, getattr(self, "_solve", None))
        try:
            if isinstance(i, (bool, np.bool_)):  # True is no position (a review: r[True] was r[1])
                raise TypeError
            i = operator.index(i)
        except TypeError:  # a red team: r[196] (an id) was a bare IndexError, r['196'] a TypeError
            raise UsageError(f"a result is indexed by position (0 to {len(self) - 1}), not by "
                             f"{shorten(repr(i), 30)}; for a query's answer by id: dict((q, ids) for q, ids, _ in r)"
                             "[id]") from None
        if not -len(self) <= i < len(self):
            raise PositionError(f"position {i} is outside this result's {len(self)} quer"
                             f"{'y' if len(self) == 1 else 'ies'} (0 to {len(self) - 1}); for a query's answer by "
                             "id: dict((q, ids) for q, ids, _ in r)[id]")
        return self.query_ids[i], self.movie_ids[i], self.scores[i]

    def _repr_html_(self) -> str:  # a notebook shows the rows (the first 50 queries' worth)
        return _frame_html(lambda: Recommendations(self._engine, self.query_ids[:50], self._rows[:50],
                                                         self.scores[:50], self.fallback[:50], [],
                                                         self.query_column).to_frame(),
                           len(self.query_ids) > 50, f"{len(self)} queries")

    def _header(self) -> str:
        k = max((len(m) for m in self.movie_ids), default=0)
        extra = f", {len(self.unknown)} unknown" if self.unknown else ""
        return f"<Recommendations: {len(self)} quer{'y' if len(self) == 1 else 'ies'} x top-{k}{extra}>"

    def __repr__(self) -> str:
        """The summary line, then the first REPR_ROWS rows (query id, rank, movie id, title, score), the rest
        counted (a first-hour review: the summary alone said nothing of the answer). Several queries whose rows
        are more than REPR_ROWS: the first REPR_EACH rows of each of the first REPR_QUERIES queries, the rows and
        queries left counted (a review: the first 10 rows were mostly the first user's)."""
        noun = {"user_id": "user", "movie_id_query": "movie"}.get(self.query_column, "query")
        return _queries_repr(self._header(), [self.query_column, "rank", "movie_id", "title", "score"],
                             self.to_rows, lambda i: self[i:i + 1].to_rows(), len(self),
                             sum(len(m) for m in self.movie_ids), noun)

    def triples(self) -> Iterator[tuple]:
        """(query id, movie ids, scores) per query (a :class:`StreamAnswer`): what ``Model.write_stream`` takes."""
        return (StreamAnswer(q, ids, scores, rows, f)
                for q, ids, scores, rows, f in zip(self.query_ids, self.movie_ids, self.scores, self._rows,
                                                   self.fallback))

    def explain(self, n: int = 3) -> list:
        """Why each listed movie scores what it does: for each query, one :class:`Explanation` per listed movie, in
        the list's order (its ``n`` rated movies that add most to the score), or None for a query answered with the
        most popular movies (an unknown user: nothing of theirs to explain). An als model's lists only (a user's,
        or a new user's from ``recommend_new``; UsageError otherwise), and a known user's where the run records
        its users' solve (ArtifactError where it does not; see :meth:`Model.explain`)."""
        from embedrec.argcheck import count_arg

        n = count_arg(n, "n", 1)
        e = self._engine
        if self.query_column != "user_id":
            raise UsageError("explain: similar movies are scored by the cosine of two movies' vectors, not by a "
                             "user's rated movies; explain a user's list: model.recommend(user).explain()")
        solve = getattr(self, "_solve", None)
        e.explainable(new_user=solve is not None)  # a new user's list (recommend_new): an explicit model's too
        out: list = []
        for q, rows, f in zip(self.query_ids, self._rows, self.fallback):
            if q is None and solve is None:
                raise UsageError("explain: this list is no user's (the most popular movies, or a new user from "
                                 "demographics): nothing rated to split its scores by")
            if f:
                out.append(None)
                continue
            # a list of recommend_new's holds its solve (a known user's too, re-solved with its new ratings)
            one = solve if solve is not None else e.known_solve(int(e.users.rows([q])[0][0]),
                                                                getattr(self, "_prior", "auto"))
            out.append(explained(e, one, q, rows, n))
        return out

    def to_rows(self, fallback_column: bool = False, explanations: list | None = None,
                because_as_text: bool = False) -> Iterator[dict]:
        """One dict per recommended movie: the query id, rank, movie_id, title, year, genres, score (the CLI's
        rows); with ``fallback_column``, also ``fallback``: 'popular' for a query answered with the most popular
        movies, else 'none' (the CLI's --fallback popular); with ``explanations`` (what :meth:`explain` gives),
        also ``because``: the listed movie's :meth:`Explanation.because` (None for a popular fallback's), or with
        ``because_as_text`` the one cell a table, CSV or TSV writes of it (serve.explain.because_text:
        '50 Star Wars (1977) 31%; ...')."""
        from embedrec.argcheck import flag
        from embedrec.serve.explain import because_text

        fallback_column = flag(fallback_column, "fallback_column", "to_rows")  # True or False, as every flag
        because_as_text = flag(because_as_text, "because_as_text", "to_rows")
        if explanations is not None and len(explanations) != len(self):
            raise UsageError(f"to_rows: explanations holds {len(explanations)} queries' where this result has "
                             f"{len(self)}; give what this result's explain() gave")
        for i, (q, rows, scores, f) in enumerate(zip(self.query_ids, self._rows, self.scores, self.fallback)):
            because = None if explanations is None else explanations[i]
            for j, r in enumerate(self._engine.rows_for(q, rows, scores)):
                if self.query_column != "user_id":
                    r = {self.query_column: q, **{c: v for c, v in r.items() if c != "user_id"}}
                if fallback_column:
                    r["fallback"] = FALLBACK_VALUES[f]
                if explanations is not None:
                    items = None if because is None else because[j].because()
                    r["because"] = because_text(items) if because_as_text else items
                yield r

    def to_frame(self):
        """to_rows() as a pandas DataFrame, with the dtypes ``pd.read_parquet`` gives for an ``export --topk-all``
        Parquet file (rank int32, year pandas' nullable Int32, a missing year <NA>, score float32, genres lists), plus
        the column ``fallback``: True where the query was not in the training data and got the most popular movies
        (missing='popular'; their score is the rating count). Ids of mixed kinds (an unknown text id beside
        integer ids) stay as given, in an object column: ``.astype({'user_id': str})`` before ``to_parquet``."""
        import pandas as pd
        import pyarrow as pa

        rows = list(self.to_rows())
        flags = [f for f, n in zip(self.fallback, self.movie_ids) for _ in range(len(n))]
        user_ids = self._engine.catalogue.user_ids
        types = {"rank": pa.int32(), "year": pa.int32(), "genres": pa.list_(pa.string()), "score": pa.float32(),
                 "title": pa.string(), "user_id": _id_type(user_ids), "movie_id": _id_type(self._engine.movie_ids)}
        types["movie_id_query"] = types["movie_id"]
        values = {c: [r[c] for r in rows] for c in self.columns}
        columns = {c: _column(v, types[c], typed=c != "user_id") for c, v in values.items()}
        frame = pa.table({c: col for c, col in columns.items() if col is not None}).to_pandas()
        if "year" in frame:
            frame["year"] = frame["year"].astype("Int32")  # whole years beside <NA>, not float64 once one is missing
        for i, c in enumerate(self.columns):  # ids of mixed kinds, as given (a review: 196 became '196')
            if columns[c] is None:
                frame.insert(i, c, pd.Series(values[c], dtype=object))
        return frame.assign(fallback=np.array(flags, dtype=bool))


def explained(engine: Recommender, solve, user_id, movies, n: int) -> list[Explanation]:
    """The :class:`Explanation` of each movie row of ``movies`` for the user of ``solve``
    (serve.explain.UserSolve; ``user_id`` None for a new user), its ``n`` rated movies that add most."""
    from embedrec.serve.explain import split_scores, top_parts

    out = []
    for sp in split_scores(solve, engine.factors, np.asarray(movies, np.int64)):
        top = top_parts(sp.parts, n)
        rest = np.ones(sp.parts.size, bool)
        rest[top] = False
        out.append(Explanation(engine, user_id, sp.movie, sp.score, solve.rows[top], sp.parts[top],
                               np.asarray(solve.weights, np.float64)[top], float(sp.parts[rest].sum()),
                               int(rest.sum()), sp.bias, sp.remainder, sp.clip, sp.prior))
    return out


class Explanation:
    """Why a user's score of a movie is what it is (``Model.explain``, ``Recommendations.explain``): an als model's
    score split over the movies the user rated, exactly (Hu, Koren & Volinsky 2008; serve.explain).

    ``movie_ids``, ``contributions``, ``weights`` (each movie's confidence in the user's solve) and ``shares``
    (contribution / score; NaN where the score is not above 0) of the rated movies that add most, largest
    first; ``others``: the sum of the other ``n_others`` rated movies' terms; ``bias``: the movie's bias (recent
    popularity where the run adds it, train.als_trend; else 0); ``remainder``: what the served vector holds beyond
    the exact solve of the user's rated movies (a known user's vector is training's few conjugate-gradient steps
    towards it: small; a new user's is float rounding); ``prior``: in a new user's list, the popularity prior's
    part (serve.prior, train.als_newuser_prior; else 0). The parts add up:
    ``sum(contributions) + others + bias + prior + remainder == score``, the score ``predict`` gives for the pair
    (a new user's list's score with the prior). ``to_rows()``/``to_frame()`` list them (a column ``term``: rated,
    other_rated, movie_bias, popularity, remainder) so a frame's ``contribution`` column sums to the score.

    An explicit model's new user (a ridge solve, serve.explain): ``weights`` are the residual ratings (the rating
    less mu + b_j), ``bias`` is the baseline mu + b_m (term ``baseline``), and ``clip`` what the clip of the
    predicted rating to the scale took off (term ``clip`` where not 0): ``sum(contributions) + others + bias +
    clip + remainder == score``; 0 for an als model."""

    def __init__(self, engine: Recommender, user_id, movie_row: int, score: float, rows, contributions, weights,
                 others: float, n_others: int, bias: float, remainder: float, clip: float = 0.0,
                 prior: float = 0.0):
        self._engine, self._rows = engine, np.asarray(rows, np.int64)
        self.user_id = user_id
        self.movie_id = py_id(engine.movie_ids[movie_row])
        self.score, self.others, self.n_others = float(score), float(others), int(n_others)
        self.bias, self.remainder, self.clip = float(bias), float(remainder), float(clip)
        self.prior = float(prior)
        self.movie_ids = FrozenList(py_id(m) for m in engine.movie_ids[self._rows])
        self.contributions = _frozen_array(np.asarray(contributions, np.float64))
        self.weights = _frozen_array(np.asarray(weights, np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            shares = self.contributions / self.score if self.score > 0 else np.full(len(self.movie_ids), np.nan)
        self.shares = _frozen_array(shares)

    def __setstate__(self, state: dict) -> None:  # unpickled or deep-copied: its arrays read-only again
        self.__dict__.update(state)
        self.__dict__.setdefault("clip", 0.0)  # pickled before an explicit model's new user was explained
        self.__dict__.setdefault("prior", 0.0)  # pickled before a new user's popularity prior
        for name in ("contributions", "weights", "shares"):
            setattr(self, name, _frozen_array(getattr(self, name)))

    @property
    def n_rated(self) -> int:
        """How many rated movies the user's solve holds (those listed and the others)."""
        return len(self.movie_ids) + self.n_others

    def __len__(self) -> int:
        return len(self.movie_ids)

    def __repr__(self) -> str:
        who = "a new user" if self.user_id is None else f"user {self.user_id!r}"
        shown = float(self.contributions.sum())
        text = f"{len(self)} of {self.n_rated} rated movies {shown:+.4f}"
        if self.n_others:
            text += f", the other {self.n_others} {self.others:+.4f}"
        if self.bias:
            text += f", {'baseline' if self._engine.explicit else 'movie bias'} {self.bias:+.4f}"
        if self.clip:
            text += f", clip {self.clip:+.4f}"
        if self.prior:
            text += f", popularity {self.prior:+.4f}"
        return (f"<Explanation: {who}, movie {self.movie_id!r}: score {self.score:.4f} = {text}, remainder "
                f"{self.remainder:+.2g}>")

    def _share(self, v: float) -> float:
        return v / self.score if self.score > 0 else float("nan")

    def items(self) -> list[dict]:
        """The listed rated movies, largest contribution first: {'movie_id', 'title', 'contribution', 'share'} each
        (share None where the score is not above 0): an als model's ``recommend --explain`` column (see
        :meth:`because`)."""
        titles = self._engine.titles
        return [{"movie_id": m, "title": titles[r] or None, "contribution": float(c),
                 "share": None if not np.isfinite(s) else float(s)}
                for m, r, c, s in zip(self.movie_ids, self._rows.tolist(), self.contributions, self.shares)]

    def because(self) -> list[dict]:
        """What ``recommend --explain``'s column ``because`` holds: an als model's :meth:`items`, each with its
        ``term`` 'rated' (a new user's after the popularity prior's part, term 'popularity', where its list has one:
        train.als_newuser_prior; after the movie's bias, term 'movie_bias', where the model adds recent popularity:
        train.als_trend); an explicit model's
        (a new user's) its baseline mu + b_m first, then the listed rated movies, then the clip to the rating scale
        where it took something off, each with its ``term`` ('baseline', 'rated', 'clip'; a review: a score of 4.79
        shown as '3.4%; -0.2%', its 97% baseline and its clip left out), so the listed parts are the score less
        the other rated movies' and the remainder: {'term', 'movie_id', 'title', 'contribution', 'share'} each
        (movie_id and title None but for a rated movie)."""
        items = self.items()

        def part(term: str, c: float) -> dict:
            s = self._share(c)
            return {"term": term, "movie_id": None, "title": None, "contribution": c,
                    "share": None if not np.isfinite(s) else float(s)}

        if not self._engine.explicit:  # the popularity prior first where the list has one (a new user's), then the
            # movie's bias where the model has one (recent popularity, train.als_trend: an own-data review found 57% of
            # a score unshown), and every item naming its term, a known user's too (a shell review: the key came and
            # went with --liked)
            return [*([part("popularity", self.prior)] if self.prior else []),
                    *([part("movie_bias", self.bias)] if self.bias else []), *({"term": "rated", **it} for it in items)]

        return [part("baseline", self.bias), *({"term": "rated", **it} for it in items),
                *([part("clip", self.clip)] if self.clip else [])]

    def to_rows(self) -> Iterator[dict]:
        """One dict per part (term, movie_id, title, weight, contribution, share): each listed rated movie
        ('rated'), then the other rated movies together ('other_rated', where there are any), the movie's bias
        ('movie_bias', where it is not 0), a new user's popularity prior ('popularity', where its list has one) and
        the 'remainder': their contributions add up to the score."""
        titles = self._engine.titles
        for m, r, w, c, s in zip(self.movie_ids, self._rows.tolist(), self.weights.tolist(),
                                 self.contributions.tolist(), self.shares.tolist()):
            yield {"term": "rated", "movie_id": m, "title": titles[r] or None, "weight": w, "contribution": c,
                   "share": s}
        extra = [("other_rated", self.others, f"the other {self.n_others} rated movies")] if self.n_others else []
        extra += [("baseline" if self._engine.explicit else "movie_bias", self.bias, None)] if self.bias else []
        extra += [("clip", self.clip, None)] if self.clip else []
        extra += [("popularity", self.prior, "the most popular movies (train.als_newuser_prior)")] if self.prior else []
        extra.append(("remainder", self.remainder, None))
        for term, c, title in extra:
            yield {"term": term, "movie_id": None, "title": title, "weight": None, "contribution": c,
                   "share": self._share(c)}

    columns = ["term", "movie_id", "title", "weight", "contribution", "share"]

    def to_frame(self):
        """to_rows() as a pandas DataFrame: its ``contribution`` column sums to ``score``."""
        import pandas as pd

        rows = list(self.to_rows())
        frame = pd.DataFrame(rows, columns=self.columns)
        ids = [r["movie_id"] for r in rows]  # integer ids stay integers beside the parts that have none (not 242.0)
        frame["movie_id"] = pd.array(ids, dtype="Int64") if np.asarray(self._engine.movie_ids).dtype.kind in "iu" \
            else pd.Series(ids, dtype=object)
        return frame

    def _repr_html_(self) -> str:
        return self.to_frame()._repr_html_() + f"<p>score {self.score:.6f} (user {self.user_id!r}, movie " \
                                                f"{self.movie_id!r})</p>"


class Predictions:
    """Scores of (user, movie) pairs. ``fallback`` per pair: 'none', or which side was not in the training data
    ('user_unknown', 'movie_unknown', 'both'): an explicit model's score then comes from the biases / global mean,
    as Surprise's does; a ranking model's is NaN where it has no term for it (Model.predict says which)."""

    columns = ["user_id", "movie_id", "fallback", "score"]

    def __init__(self, user_ids: list, movie_ids: list, scores: np.ndarray, fallback: list[str],
                 id_kinds: tuple[str, str] = ("i", "i")):
        self.user_ids, self.movie_ids = FrozenList(user_ids), FrozenList(movie_ids)  # read-only (a review)
        self.scores, self.fallback = _frozen_array(scores), FrozenList(fallback)
        self._id_kinds = id_kinds  # the model's user and movie id dtypes' kinds: an empty frame's id dtypes

    def __setstate__(self, state: dict) -> None:  # unpickled or deep-copied: its scores read-only again
        self.__dict__.update(state)
        self.scores = _frozen_array(self.scores)

    def __len__(self) -> int:
        return len(self.user_ids)

    def _header(self) -> str:
        n = sum(f != "none" for f in self.fallback)
        return f"<Predictions: {len(self):,} pair{'' if len(self) == 1 else 's'}{f', {n:,} with a fallback' if n else ''}>"

    def __repr__(self) -> str:
        """The summary line, then the first REPR_ROWS pairs' rows, the rest counted (a first-hour review:
        ``predict(196, 242)`` showed '<Predictions: 1 pair>' and no score)."""
        return _head_repr(self._header(), self.columns, self.to_rows, len(self))

    @property
    def score(self) -> float:
        """The score of a one-pair result (``predict(196, 242).score``, as Surprise's ``predict(uid, iid).est``);
        a result of several pairs (or none) raises a UsageError, also an AttributeError, saying to read
        ``scores``."""
        if len(self) != 1:
            held = "no pair" if not len(self) else f"{len(self):,} pairs"
            raise _NoOneScore(f"score is the score of a one-pair result, and these predictions hold {held}: read "
                              "scores (an array, a score a pair, in the order asked), or p[i] for the i-th pair's "
                              "(user id, movie id, fallback, score)")
        return float(self.scores[0])

    @property
    def est(self) -> float:
        """:attr:`score` under Surprise's name (``algo.predict(uid, iid).est``), so code written for Surprise reads
        a one-pair result unchanged (a first-hour review: ``.est`` was an AttributeError)."""
        return self.score

    def __iter__(self) -> Iterator[tuple]:
        """(user id, movie id, fallback, score) per pair, the order of ``columns``."""
        return zip(self.user_ids, self.movie_ids, self.fallback, self.scores.tolist())

    def __getitem__(self, i: int | slice):
        """The i-th pair's (user id, movie id, fallback, score), by position; a slice gives Predictions of those
        pairs (a red team: Predictions could not be indexed)."""
        import operator

        if isinstance(i, slice):
            return Predictions(self.user_ids[i], self.movie_ids[i], self.scores[i], self.fallback[i], self._id_kinds)
        try:
            if isinstance(i, (bool, np.bool_)):
                raise TypeError
            i = operator.index(i)
        except TypeError:
            raise UsageError(f"predictions are indexed by position (0 to {len(self) - 1}), not by "
                             f"{shorten(repr(i), 30)}") from None
        if not -len(self) <= i < len(self):
            raise PositionError(f"position {i} is outside these {len(self)} predictions (0 to {len(self) - 1})")
        return self.user_ids[i], self.movie_ids[i], self.fallback[i], float(self.scores[i])

    def _repr_html_(self) -> str:
        return _frame_html(lambda: Predictions(self.user_ids[:500], self.movie_ids[:500], self.scores[:500],
                                               self.fallback[:500], self._id_kinds).to_frame(), len(self) > 500,
                           f"{len(self)} pairs")

    def to_rows(self) -> Iterator[dict]:
        """One dict per pair, in the order asked: user_id, movie_id, fallback, score (``columns``)."""
        for u, m, f, s in zip(self.user_ids, self.movie_ids, self.fallback, self.scores.tolist()):
            yield {"user_id": u, "movie_id": m, "fallback": f, "score": s}

    def to_frame(self) -> pd.DataFrame:
        """to_rows() as a pandas DataFrame (``columns``); with no pair, the dtypes a frame with rows has."""
        import pandas as pd

        frame = pd.DataFrame(list(self.to_rows()), columns=self.columns)
        if len(self):
            return frame
        # no pair left: the dtypes a frame with rows has (a red team: all object, so a concat of batches changed them)
        ids = ["int64" if k in "iu" else "str" for k in self._id_kinds]
        return frame.astype({"user_id": ids[0], "movie_id": ids[1], "fallback": "str", "score": "float64"})


class _NotUsers(UsageError, AttributeError):
    """``Recommendations.user_ids`` of a result of movie queries: a UsageError, and an AttributeError, so ``hasattr``
    and ``getattr(r, 'user_ids', None)`` read it as no attribute."""


class _NoOneScore(UsageError, AttributeError):
    """``Predictions.score`` of a result of several pairs: a UsageError, and an AttributeError, so ``hasattr`` and
    ``getattr(p, 'score', None)`` read it as no attribute."""


REPR_ROWS = 10  # a result's repr shows its first rows, as a DataFrame's head (a review found 17K-character reprs)
REPR_QUERIES, REPR_EACH = 3, 3  # a Recommendations of several queries: this many rows of each of its first queries
REPR_TITLE = 36  # a title's characters in a repr's row


def _head_repr(header: str, columns: list[str], rows, total: int, queries: tuple[int, str] | None = None) -> str:
    """``header``, then the first REPR_ROWS of ``rows()`` (dicts) in ``columns``, aligned as ``--format table``
    writes them (scores to at most 4 decimals, output._decimals; titles cut to REPR_TITLE characters), and a line
    counting the rest of the ``total`` rows (and ``queries``: (the queries not shown, what one is called: 'user'),
    where some are not); the header alone where the rows cannot be read (a repr never raises) or there are none."""
    import itertools

    from embedrec.output import _cell, _decimals

    try:
        head = list(itertools.islice(rows(), REPR_ROWS))
    except Exception:  # noqa: BLE001 (a repr never raises: its summary line is still true)
        return header
    if not head:
        return header
    values = [[float(r.get(c)) if isinstance(r.get(c), np.floating) else r.get(c) for c in columns] for r in head]
    places = [_decimals([row[i] for row in values]) for i in range(len(columns))]  # as a table's column: 0.3571,
    # a popular list's counts 485

    def cell(c: str, v, d: int) -> str:
        text = _cell(v, d)
        return text if c != "title" or len(text) <= REPR_TITLE else text[:REPR_TITLE - 3] + "..."

    cells = [[cell(c, v, d) for c, v, d in zip(columns, row, places)] for row in values]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = [header, "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    more = total - len(head)
    if more > 0:
        left, noun = queries or (0, "")
        also = f", {left:,} more {noun if left == 1 else 'queries' if noun == 'query' else noun + 's'}" if left else ""
        lines.append(f"... {more:,} more row{'' if more == 1 else 's'}{also} (to_frame() has them all)")
    return "\n".join(lines)


def _queries_repr(header: str, columns: list[str], rows, query_rows, n_queries: int, total: int, noun: str) -> str:
    """The repr of a result of ``n_queries`` queries and ``total`` rows (a Recommendations', a SimilarUsers'):
    ``header``, then its rows (``rows()``) as :func:`_head_repr` shows them; where several queries' rows are more
    than REPR_ROWS, the first REPR_EACH rows of each of the first REPR_QUERIES queries (``query_rows(i)``: the i-th
    query's), the rows and the queries (each a ``noun``) left counted."""
    import itertools

    if n_queries < 2 or total <= REPR_ROWS:
        return _head_repr(header, columns, rows, total)
    shown = min(n_queries, REPR_QUERIES)
    return _head_repr(header, columns,
                      lambda: itertools.chain.from_iterable(itertools.islice(query_rows(i), REPR_EACH)
                                                            for i in range(shown)),
                      total, queries=(n_queries - shown, noun))


def _id_type(ids: np.ndarray):
    import pyarrow as pa

    return pa.int64() if np.asarray(ids).dtype.kind in "iu" else pa.string()


def _column(values: list, type_, typed: bool = True):
    """One column of to_frame's table, of ``type_``; all missing as nulls of that type (a dataset without titles:
    a red team found them untyped, object columns where the export's Parquet file reads string and float64),
    or untyped (``typed=False``: a new user's id, None); None where the values are ids of mixed kinds (an
    unknown user's text id beside integer ids), which no Arrow type holds: to_frame keeps them as given, in an
    object column."""
    import pyarrow as pa

    if values and all(v is None for v in values):
        return pa.nulls(len(values), type_ if typed else None)
    try:
        return pa.array(values, type=type_)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None


def _frame_html(head, cut: bool, total: str) -> str:
    """A result's notebook view: its to_frame() rows as HTML (the first ones only, for a large result)."""
    html = head()._repr_html_()
    return html + (f"<p>(the first rows of {total}; to_frame() has them all)</p>" if cut else "")


def _utc(t: float) -> str | None:
    """Unix seconds as ISO 8601 in UTC, '1997-12-04T15:55:49Z' (None for none; the number itself where no calendar
    date is one: a time far out of range)."""
    import time

    if t != t:  # NaN: no time (a rated_below row)
        return None
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))
    except (OverflowError, OSError, ValueError):
        return str(int(t))


class History:
    """A user's movies in the dataset the model was trained on (``Model.history``), in the order asked: per row
    ``movie_ids``, ``ratings`` (float64; a click log's counts where ``counts`` is True; NaN for a ``rated_below``
    row, whose rating the dataset does not keep), ``timestamps`` (Unix seconds as float64, NaN where none; None
    where the dataset has no times) and ``splits`` (each row's 'train', 'valid', 'test', 'rated_below', or 'update':
    a movie update-users gave the user, with the rating and time its file gave, NaN where it gave none or the run
    was updated before they were kept);
    ``user_id``, and ``dataset``: the folder read; ``total``: the user's movies in the parts asked, ``len()`` those
    listed (``k``); ``summary``: the repr's line ('user 7, 3 of 51 movies (40 train, 5 valid, 6 test)', the parts'
    counts of all ``total``). ``to_rows()``/``to_frame()`` add each movie's title, year and genres (``embedrec
    history``'s rows; their time as ISO 8601 in UTC)."""

    def __init__(self, engine: Recommender, user_id, rated, order: np.ndarray, whole: np.ndarray | None = None):
        from embedrec.serve.history import PARTS

        whole = order if whole is None else whole  # every row of the parts asked, in the order asked (k cuts order)
        parts = [PARTS[p] for p in np.asarray(rated.parts)[whole].tolist()]
        self.total = len(parts)
        self._whole = {s: parts.count(s) for s in dict.fromkeys(parts)}  # each part's count, as they come
        rows = np.asarray(rated.movies, np.int64)[order]
        self._engine, self._rows = engine, rows
        self.user_id, self.counts, self.dataset = user_id, bool(rated.counts), rated.dataset
        self._weighted = bool(getattr(rated, "weighted", False))
        self.movie_ids = _frozen_array(np.asarray(engine.movie_ids)[rows])
        self.ratings = _frozen_array(np.asarray(rated.ratings, np.float64)[order])
        self.timestamps = None if rated.times is None else _frozen_array(np.asarray(rated.times, np.float64)[order])
        self.splits = FrozenList(PARTS[p] for p in np.asarray(rated.parts)[order].tolist())
        self.columns = ["user_id", "movie_id", "title", "year", "genres", self._value,
                        *(["time"] if self.timestamps is not None else []), "split"]

    @property
    def _value(self) -> str:
        """The value column: a click log's events counted, or their types' weights summed (a first-hour review: a
        summed weight of 3 for one 'cart' event was called a count); a rating otherwise."""
        return ("weight" if getattr(self, "_weighted", False) else "count") if self.counts else "rating"

    def __setstate__(self, state: dict) -> None:  # unpickled or deep-copied: its arrays read-only again
        self.__dict__.update(state)
        for name in ("movie_ids", "ratings", "timestamps"):
            if getattr(self, name) is not None:
                setattr(self, name, _frozen_array(getattr(self, name)))

    def __len__(self) -> int:
        return len(self.splits)

    def __iter__(self) -> Iterator[tuple]:
        """(movie id, rating, timestamp or None, split) per row."""
        times = self.timestamps if self.timestamps is not None else [float("nan")] * len(self)
        return ((py_id(m), float(r), None if t != t else int(t), s)
                for m, r, t, s in zip(self.movie_ids, self.ratings.tolist(), times, self.splits))

    @property
    def summary(self) -> str:
        """'user 7, 51 movies (40 train, 5 valid, 6 test)'; where ``k`` listed fewer, 'user 7, 3 of 51 movies (...)',
        the parts' counts those of all 51 (a first-hour review: '3 movies (3 train)' for a user of 51 ratings)."""
        total = getattr(self, "total", len(self))  # (a History pickled before it kept them: its rows alone)
        by = getattr(self, "_whole", None) or {s: self.splits.count(s) for s in dict.fromkeys(self.splits)}
        parts = ", ".join(f"{n:,} {s}" for s, n in by.items())
        shown = f"{len(self):,} of {total:,}" if total > len(self) else f"{total:,}"
        return f"user {self.user_id!r}, {shown} movie{'' if total == 1 else 's'}{f' ({parts})' if parts else ''}"

    def _header(self) -> str:
        return f"<History: {self.summary}>"

    def __repr__(self) -> str:
        """The summary line, then the first REPR_ROWS movies' rows (movie id, title, year, rating or count, time,
        split: the user is the header's), the rest counted, as a Recommendations' repr (a first-hour review: print()
        showed the summary alone)."""
        columns = [c for c in self.columns if c not in ("user_id", "genres")]
        return _head_repr(self._header(), columns, self.to_rows, len(self))

    def to_rows(self) -> Iterator[dict]:
        """One dict per movie: user_id, movie_id, title, year, genres, rating (``count`` on a click log's model),
        time (where the dataset has times: ISO 8601 in UTC, None for a rated_below row or an update's without one)
        and split. A whole rating or count is an int (4, not 4.0), another a float (3.5), as predict passes a file's
        ratings through: so every format prints it alike (a first-hour review: 1 in the table, 1.0 in csv, tsv and
        json)."""
        e, value = self._engine, self._value
        times = self.timestamps.tolist() if self.timestamps is not None else None
        for i, (m, r) in enumerate(zip(self._rows.tolist(), self.ratings.tolist())):
            row = {"user_id": self.user_id, "movie_id": py_id(e.movie_ids[m]), "title": e.titles[m] or None,
                   "year": e.years[m], "genres": list(e.genres[m] or []),
                   value: None if r != r else int(r) if r.is_integer() else r}
            if times is not None:
                row["time"] = _utc(times[i])
            row["split"] = self.splits[i]
            yield row

    def to_frame(self):
        """to_rows() as a pandas DataFrame: ``time`` as UTC datetimes (NaT where none), year a nullable int,
        ``rating`` float64 (NaN where none: a rated_below row, an update's without one), a click log's ``count`` a
        nullable int."""
        import pandas as pd

        frame = pd.DataFrame(list(self.to_rows()), columns=self.columns)
        frame["year"] = pd.array(frame["year"].tolist(), dtype="Int32")
        if self.timestamps is not None:
            frame["time"] = pd.to_datetime(pd.Series(self.timestamps), unit="s", utc=True)
        if self._value == "count":
            frame["count"] = pd.array(frame["count"].tolist(), dtype="Int64")
        else:  # float64 with NaN for a row without one, whatever the rows (a notebook review: an update's rows
            frame[self._value] = np.array(self.ratings, np.float64)  # alone were object dtype holding None; a
            # weight summed may be 1.5)
        return frame

    def _repr_html_(self) -> str:
        html = self.to_frame().head(500)._repr_html_() + (f"<p>(the first 500 of {len(self):,} movies; to_frame() "
                                                          "has them all)</p>" if len(self) > 500 else "")
        from html import escape

        return html + (f"<p>{escape(self.summary)}</p>" if getattr(self, "total", len(self)) > len(self) else "")


class _UserLists:
    """What the results that list users share (:class:`SimilarUsers`, :class:`Audience`): ``query_ids``, per query
    ``user_ids`` and ``scores`` and the other arrays ``_arrays`` names (read-only, again after a pickle or a deep
    copy), ``unknown`` (the queries ``missing='skip'`` left out), the rows (``to_rows``, one query's
    ``_query_rows``), a repr of the first rows, a notebook view; ``_noun``: what a query is, as the repr counts them."""

    _arrays: tuple[str, ...] = ("user_ids", "scores")
    _noun = "user"

    def _ids(self, engine: Recommender, query_ids: list, rows: list, unknown) -> None:
        self._engine = engine
        self.query_ids = FrozenList(query_ids)
        self.unknown = FrozenList(unknown)
        self.user_ids = FrozenList(_frozen_array(np.asarray(engine.user_ids)[np.asarray(r, np.int64)]) for r in rows)

    def __setstate__(self, state: dict) -> None:  # unpickled or deep-copied: its arrays read-only again
        self.__dict__.update(state)
        self.__dict__.setdefault("unknown", FrozenList())  # pickled before similar_users took missing=
        for name in self._arrays:
            setattr(self, name, FrozenList(_frozen_array(a) for a in getattr(self, name)))

    def __len__(self) -> int:
        return len(self.query_ids)

    def __iter__(self) -> Iterator[tuple]:
        """(query id, user ids, scores) per query, as a Recommendations' (query id, movie ids, scores)."""
        return iter(zip(self.query_ids, self.user_ids, self.scores))

    def _header(self) -> str:
        raise NotImplementedError

    def _query_rows(self, i: int) -> Iterator[dict]:
        raise NotImplementedError

    def __repr__(self) -> str:
        """The summary line, then the rows, as a Recommendations' repr shows its own (several queries: the first rows
        of each of the first ones; a first-hour review: print() showed the summary alone)."""
        return _queries_repr(self._header(), self.columns, self.to_rows, self._query_rows, len(self),
                             sum(len(u) for u in self.user_ids), self._noun)

    def to_rows(self) -> Iterator[dict]:
        """One dict per listed user, of ``columns``."""
        for i in range(len(self)):
            yield from self._query_rows(i)

    def _repr_html_(self) -> str:
        return self.to_frame()._repr_html_()


class SimilarUsers(_UserLists):
    """The users most like each query user (``Model.similar_users``): ``query_ids``, and per query ``user_ids``,
    ``scores`` (the cosine similarity of the two users' vectors, highest first), ``rated`` (how many movies each
    listed user rated) and ``both_rated`` (how many of those the query user rated too), counted over the pairs the
    model was trained on (train and valid, and those rated below data.min_rating: what recommend leaves out of a
    user's list; the test split is held out) and those update-users added: a user's History rows but its test
    ones. ``unknown``: the query ids left out by ``missing='skip'`` (not in the training data, or with no trained
    vector), as a Recommendations' ``unknown``."""

    columns = ["user_id_query", "rank", "user_id", "score", "both_rated", "rated"]
    _arrays = ("user_ids", "scores", "rated", "both_rated")

    def __init__(self, engine: Recommender, query_ids: list, rows: list, scores: list, rated: list, both: list,
                 unknown: list = ()):
        self._ids(engine, query_ids, rows, unknown)
        self.scores = FrozenList(_frozen_array(np.asarray(s, np.float32)) for s in scores)
        self.rated = FrozenList(_frozen_array(np.asarray(n, np.int64)) for n in rated)
        self.both_rated = FrozenList(_frozen_array(np.asarray(n, np.int64)) for n in both)

    def _header(self) -> str:
        k = max((len(u) for u in self.user_ids), default=0)
        extra = f", {len(self.unknown)} unknown" if self.unknown else ""
        return f"<SimilarUsers: {len(self)} quer{'y' if len(self) == 1 else 'ies'} x top-{k}{extra}>"

    def _query_rows(self, i: int) -> Iterator[dict]:
        """The i-th query's rows of :meth:`to_rows`: user_id_query, rank, user_id, score, both_rated, rated."""
        q, ids, scores, both, rated = (self.query_ids[i], self.user_ids[i], self.scores[i], self.both_rated[i],
                                       self.rated[i])
        for rank, (u, s, b, n) in enumerate(zip(ids.tolist(), scores.tolist(), both.tolist(), rated.tolist()), 1):
            yield {"user_id_query": q, "rank": rank, "user_id": u, "score": s, "both_rated": b, "rated": n}

    def to_frame(self):
        """to_rows() as a pandas DataFrame (rank int32, score float32)."""
        import pandas as pd

        frame = pd.DataFrame(list(self.to_rows()), columns=self.columns)
        ids = np.asarray(self._engine.user_ids).dtype  # (an empty result's id columns too: a review found object)
        return frame.astype({"user_id_query": ids, "user_id": ids, "rank": "int32", "score": "float32",
                             "both_rated": "int64", "rated": "int64"})


class Audience(_UserLists):
    """The users most likely to take to each query movie (``Model.audience``): ``query_ids`` (the movies, as the
    run's ids are), and per query ``user_ids`` and ``scores`` (each user's score for the movie, ``predict``'s for
    the pair: a ranking model's score, an explicit model's predicted rating; highest first, equal scores in user row
    order). ``unknown``: the queries left out by ``missing='skip'``, as a Recommendations' ``unknown``."""

    columns = ["movie_id", "rank", "user_id", "score"]
    _noun = "movie"

    def __init__(self, engine: Recommender, query_ids: list, rows: list, scores: list, unknown: list = ()):
        self._ids(engine, query_ids, rows, unknown)
        self.scores = FrozenList(_frozen_array(np.asarray(s)) for s in scores)

    def _header(self) -> str:
        k = max((len(u) for u in self.user_ids), default=0)
        extra = f", {len(self.unknown)} unknown" if self.unknown else ""
        return f"<Audience: {len(self)} movie{'' if len(self) == 1 else 's'} x top-{k} users{extra}>"

    def _query_rows(self, i: int) -> Iterator[dict]:
        """The i-th query's rows of :meth:`to_rows`: movie_id, rank, user_id, score."""
        q, ids, scores = self.query_ids[i], self.user_ids[i], self.scores[i]
        for rank, (u, s) in enumerate(zip(ids.tolist(), scores.tolist()), 1):
            yield {"movie_id": q, "rank": rank, "user_id": u, "score": s}

    def to_frame(self):
        """to_rows() as a pandas DataFrame (rank int32; score float32 for a ranking model, float64 ratings for an
        explicit one)."""
        import pandas as pd

        frame = pd.DataFrame(list(self.to_rows()), columns=self.columns)
        dtype = self.scores[0].dtype if len(self.scores) else np.float32
        e = self._engine  # (an empty result's id columns too: a review found object, which a concat spread)
        return frame.astype({"movie_id": np.asarray(e.movie_ids).dtype, "user_id": np.asarray(e.user_ids).dtype,
                             "rank": "int32", "score": dtype})
