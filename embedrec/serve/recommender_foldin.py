"""The :class:`~embedrec.serve.recommender.Recommender`'s part that folds in a user: a new user's vector from
liked or rated movies (or demographics), a known user's re-solved with more, the checks of a request's ratings, and
an als run's users' solve, which explanations and update-users read (serve.foldin's functions do the arithmetic). A
mixin: it reads the Recommender's arrays and catalogue and calls its helpers, never alone."""

from __future__ import annotations

import contextlib
import logging

import numpy as np

from embedrec.data.ids import py_id
from embedrec.errors import ArtifactError, UsageError
from embedrec.run_layout import SOLVE_WEIGHTS, USER_SCALE
from embedrec.serve import foldin
from embedrec.serve.explain import SERIAL, UserSolve
from embedrec.threads import blas_threads
from embedrec.verify import check_solve_arrays

log = logging.getLogger("embedrec")
# A new user's fold-in runs its solve on one BLAS thread, and the movies' Gramian too up to this many multiply-adds
# (movies x d^2; ML-100K at d 128: 28M): OpenBLAS's own threads, started and left spinning for small products,
# cost a fresh `recommend --liked 50,181,172 -k 10` on ML-100K 0.48 s against 0.34 s on one thread (medians of 6
# interleaved, load 2-3; 0.99 s against 0.61 s at load 10, session 45); a catalogue of 500K movies keeps its threads
# for the Gramian (8G multiply-adds, a second on one thread)
FOLDIN_SERIAL_MAX = 500_000_000


class FoldInServing:
    """:class:`~embedrec.serve.recommender.Recommender`'s methods of folding in a user (serve.foldin)."""

    def fold_in(self, liked: list = (), rated: dict | None = None,
                ordered: bool = False, features: dict | None = None) -> tuple[np.ndarray, float, np.ndarray]:
        """(p, b_u, the rows of every given movie) for someone not in the training data, from liked movies or
        {movie: rating} (foldin.fold_in: ridge regression for explicit models, the implicit-ALS solve for
        implicit ones, the ratings taken as training took them: foldin.implicit_weights). ``ordered``: the movies
        (of one of liked or rated) are given oldest first, and an als model weighs the latest most
        (recommend.foldin_recency); other models ignore the order (see :meth:`uses_order`). ``features``: the
        user's demographics too ({column: value}, a model trained with user features): the fold-in on top of
        their vector (foldin.fold_in's ``offset``); with no movie given, that vector alone."""
        return self.fold_in_parts(liked, rated, ordered, features=features)[:3]

    def check_ratings(self, rated: dict | None, from_file: bool = False) -> None:
        """UsageError at the first of a request's {movie: rating} that is no rating this model takes
        (foldin.checked_rating, the rule :meth:`fold_in_parts` applies), naming the movie as given: a caller that
        resolves title words to ids calls it first, so the refusal quotes the words. ``from_file``: the values
        were read from a file (:meth:`any_value`)."""
        for mid, r in (rated or {}).items():
            foldin.checked_rating(mid, r, self.scale, self._counts(), check_scale=not self.any_value(from_file))

    def any_value(self, from_file: bool) -> bool:
        """Whether a new user's ratings are taken at any finite value, not held to the model's scale: a file's (IMDb's
        1-10, Letterboxd's half stars: read on their own scale) where no value changes the list
        (:meth:`values_ignored`; session 58's first-hour review). A value typed in is held to the scale on every
        model, as update-users holds a file's rows (a review: rated={50: 500} and {50: -3} were taken silently
        where update-users refused 500)."""
        return from_file and self.values_ignored()

    def values_ignored(self) -> bool:
        """Whether a new user's rating values change nothing: an implicit model that took every rating it kept as
        a positive interaction (no train.als_rating_weight, no count weight, no data.min_rating floor), so
        ``--rated`` values are neither held to the scale nor to its step (a first-hour review: IMDb's 8 refused
        on the default model, whose list it could not change)."""
        t = self.training_ratings
        return not self.explicit and not self._counts() and not t.get("rating_weight") and \
            not t.get("count_weight") and t.get("min_rating") is None

    def rated_example(self, movie=None) -> str:
        """A --rated value in this run's own ids and scale, for advice (foldin.rated_example): ``movie`` (as given)
        at the scale's top, or the run's first two movies ('m0001=5,m0002=4')."""
        movies = [movie] if movie is not None else [py_id(m) for m in self.movie_ids[:2]]
        return foldin.rated_example(movies, self.scale, self._counts())

    def _counts(self) -> bool:
        """Whether this model was trained on counts (data.repeats=sum): a new user's values are counts."""
        return not self.explicit and "count_weight" in self.training_ratings

    def fold_in_parts(self, liked: list = (), rated: dict | None = None, ordered: bool = False,
                      strict: bool = False, unknown: list | None = None,
                      detail: dict | None = None, user: int | None = None,
                      features: dict | None = None,
                      names: dict | None = None, step_warned: bool = True,
                      from_file: bool = False) -> tuple[np.ndarray, float, np.ndarray, dict]:
        """:meth:`fold_in`, and {movie row: rating} of the ratings it left out: an implicit model's below the
        dataset's data.min_rating (foldin.below_min_rating), which training never saw. An unknown movie is left
        out with a warning (its id appended to ``unknown``, a list), or NotFoundError with ``strict``
        (foldin.rated_rows). ``detail`` (a dict): an als model's solve, as foldin.fold_in gives it. ``user``: a
        known user's row, whose vector is re-solved from its training ratings plus these (serve.update; the
        rows returned are then its seen movies and these). ``features``: a new user's demographics, its vector
        from them the fold-in's offset (:meth:`fold_in`); with ``user``, a UsageError. ``names``: {movie id: the
        title words it was given as}, for a warning (foldin.rated_rows); ``step_warned``: whether a rating off the
        training ratings' step is warned of (not of a file's ratings mapped onto the scale); ``from_file``: the
        ratings were read from a file (:meth:`any_value`)."""
        if ordered and liked and rated:
            raise UsageError("«--ordered|ordered=True» takes one history, oldest first: give «--liked or --rated|"
                             "liked or rated», not both")
        offset = None
        if features is not None:  # its refusals (no user features, an unknown column) before the movies'
            if user is not None:
                raise UsageError("«--user-features|user_features» tell a new user; a known user's vector is "
                                 "re-solved from its own ratings: drop one of «--user and --user-features|user= "
                                 "and user_features=»")
            offset = self.user_from_features(features, told=True)
            if not liked and not rated:  # nothing told beyond them: their vector (foldin.fold_in's offset)
                return offset[0], offset[1], np.zeros(0, np.int64), {}
        ignored = self.values_ignored()
        items = foldin.rated_rows(self.catalogue, liked, rated, self.scale, self._counts(), strict, unknown,
                                  "the new user's {} movies" if user is None else
                                  f"the {{}} new movies of user {self.users.raw(int(user))}",
                                  None if ignored or not step_warned else self.training_ratings.get("rating_levels"),
                                  names, check_scale=not self.any_value(from_file))
        given = np.array(list(items), dtype=np.int64)  # seen, even where a rating below min_rating is left out
        blank = given[self.untrained[given]] if given.size else given
        if blank.size:  # no training rating named them: they tell the model nothing (a review: an arbitrary list)
            names = ", ".join(str(py_id(self.movie_ids[r])) for r in blank[:5]) + (" ..." if blank.size > 5 else "")
            if blank.size == given.size and user is None:
                raise self.untrained_movies(blank, "about the user", "movies it was trained on")
            log.info("note: %s (%s) %s no training rating and tell%s this model nothing; the list comes from the %s",
                     "1 of the given movies" if blank.size == 1 else f"{blank.size:,} of the given movies", names,
                     "has" if blank.size == 1 else "have", "s" if blank.size == 1 else "",
                     "others" if user is None else "user's other ratings")
            items = {r: v for r, v in items.items() if not self.untrained[r]}  # nor do they count in the solve
        if user is not None:  # a known user plus these: its training ratings as its final solve weighed them
            from embedrec.serve.update import known_fold_in

            p, left_out = known_fold_in(self, int(user), items, detail)
            self._finite_vector(p, 0.0)
            return p, 0.0, np.union1d(self.seen(int(user)), given), left_out
        left_out = {}
        if not self.explicit:
            t = self.training_ratings
            left_out = {r: items[r] for r in foldin.below_min_rating(items, t["min_rating"])}
            items = foldin.implicit_weights(items, self.scale, t["min_rating"], t["rating_weight"],
                                            t.get("count_weight", 0.0))
        solve = None if self.explicit else self.training_ratings.get("solve")
        gram = mean = None
        if not self.explicit and (solve or {}).get("loss") != "softmax":
            gram, mean = self.movie_gram()
        positions = foldin.history_positions(len(items)) if ordered and self.uses_order() else None
        cfg = self.cfg
        with blas_threads(1):  # a d x d solve and a few small products: see FOLDIN_SERIAL_MAX
            p, b, _ = foldin.fold_in(self.factors, items, cfg.foldin_reg, cfg.foldin_alpha, solve, gram, positions,
                                     cfg.foldin_recency, self.implicit_movie() if self.explicit else None, mean,
                                     detail, offset)
        self._finite_vector(p, b)
        return p, b, given, left_out

    def _finite_vector(self, p: np.ndarray, b: float) -> None:
        if not (np.isfinite(p).all() and np.isfinite(b)):  # never a list scored by NaN
            raise ArtifactError("the user's folded-in vector is not finite: this run's embeddings hold values too "
                                "large for the fold-in; «run 'embedrec verify', then train again|train again»")

    def movie_gram(self) -> tuple[np.ndarray, np.ndarray]:
        """(Q^T Q, the mean movie row), float64 (foldin.movie_gram_mean): made once per factors, which every
        implicit fold-in and explanation reads (factors replaced: made again)."""
        if self._gram is None or self._gram[0] is not self.factors:  # with the mean: a trend's scale reads it
            n, d = self.factors.movie.shape
            with blas_threads(1) if n * d * d <= FOLDIN_SERIAL_MAX else contextlib.nullcontext():
                self._gram = (self.factors, *foldin.movie_gram_mean(self.factors))
        return self._gram[1], self._gram[2]

    def solve_arrays(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """An als run's users' final solve (read once, on first use, and checked): each seen pair's weight in it
        (run_layout.SOLVE_WEIGHTS) and each user's divisor of the solved vector (run_layout.USER_SCALE, None where the run adds
        no recent popularity); None where the run has none (a run trained before they were written, another model)."""
        if getattr(self, "_solve_arrays", None) is None:  # (none in a Recommender pickled by an older embedrec)
            got = None
            if self.run is not None and self.loss == "als":
                weights = self.run.array(SOLVE_WEIGHTS, optional=True)
                if weights is not None:
                    scale = self.run.array(USER_SCALE, optional=True)
                    check_solve_arrays(self.run, weights, scale, self.seen_idx.shape[0], self.P.shape[0])
                    got = (weights, scale)
            self._solve_arrays = False if got is None else got
        return None if self._solve_arrays is False else self._solve_arrays

    def explainable(self, new_user: bool = False) -> dict:
        """The run's als solve (``training_ratings.solve``), which explanations repeat; for a ``new_user`` of an
        explicit model, {'loss': 'explicit'} (its fold-in is a ridge solve: serve.explain); UsageError for any
        other model, whose scores do not split by rated movie."""
        solve = None if self.explicit else self.training_ratings.get("solve")
        if (solve or {}).get("loss") == "als":
            return solve
        if new_user and self.explicit:
            return {"loss": "explicit"}
        loss = self.loss
        if loss == "als":  # a run saved before its manifest recorded the solve
            raise UsageError("this als run was saved before embedrec recorded its users' solve, so its scores "
                             "cannot be split by rated movie; train it again to explain them")
        raise UsageError(f"explanations split an als model's score over the user's rated movies (its user vector "
                         f"is solved from them); this model ({loss or 'its loss unknown'}) fits its user vectors "
                         "by gradient steps, so no such split exists: train with model.loss: als (the default), "
                         "or list the movies like one with «recommend --movie|similar()»"
                         + ("; a new user's list splits exactly (its vector is a ridge solve): «--liked/--rated|"
                            "liked=/rated=»" if self.explicit else ""))

    def known_solve_arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`solve_arrays`, which a known user's split needs: ArtifactError, saying so, where the run has none."""
        arrays = self.solve_arrays()
        if arrays is None:
            raise ArtifactError("this run does not record its users' solve weights (solve_weights.npy: runs trained "
                                "before embedrec wrote it, in one process or on ranks, lack it), so a known user's "
                                "scores cannot be split by rated movie; train the run again, or "
                                "explain a new user's list «(--liked/--rated)|(liked=/rated=)»")
        return arrays

    def known_solve(self, row: int, given="auto") -> UserSolve:
        """The solve of known user ``row``'s served vector (serve.explain): its trained movies and their weights
        from the run's solve arrays, the matrix the run's ``solve`` records. ArtifactError where the run does not
        hold them (UsageError for a model that is not als)."""
        solve = self.explainable()
        weights, scale = self.known_solve_arrays()
        a, b = int(self.seen_ptr[row]), int(self.seen_ptr[row + 1])
        movies = self.seen(row)
        w = np.asarray(weights[a:b], np.float64)
        keep = w > 0  # seen, not trained on: rated below data.min_rating (or valid without a refit)
        movies, w = movies[keep].astype(np.int64), w[keep]
        d = foldin.als_columns(solve, self.Q.shape[1])  # the low-pass block's columns apart (training.lowpass)
        with blas_threads(SERIAL):  # (serve.explain.SERIAL)
            gram, _ = self.movie_gram()
            A = foldin.als_matrix(solve, gram[:d, :d], np.asarray(np.take(self.Q, movies, axis=0), np.float64)[:, :d],
                                  w, self.Q.shape[0])
        self.check_user_rows([row])
        p = np.asarray(self.P[row])
        # a user update-users added: its list's prior (the run's weight, or ``given``'s: prior_weight)
        w_prior = self.added_prior(np.array([row])).get(row, 0.0) if given == "auto" else \
            self.prior_weight(int(movies.size) if self.added_rows([row]).size else 0, given)
        return UserSolve(movies, w, A, 1.0 if scale is None else float(scale[row]), p,
                         prior=(float(self.prior_scores(p, [w_prior])[1][0]), self.prior_z) if w_prior > 0 else None,
                         lowpass=foldin.lowpass_rows(self.factors, solve, movies) if solve.get("lowpass") else None)

    def uses_order(self) -> bool:
        """Whether a new user's history given in order changes the fold-in: als models only (measured on
        ML-100K's held-out users; the other solves take the movies as a set), with recommend.foldin_recency > 0."""
        recency = self.cfg.foldin_recency
        return (self.training_ratings.get("solve") or {}).get("loss") == "als" and recency > 0

    def user_from_features(self, values: dict[str, str], told: bool = False) -> tuple[np.ndarray, float]:
        """A vector for a new user from demographics alone (models trained with features.user), e.g.
        {"age": "25", "gender": "F"}: the sum of the feature embeddings, plus the one-hot blocks of crosses.
        ``told``: liked/rated movies come with them (foldin.user_from_features' refusal says so)."""
        if self.run is None:
            raise UsageError("a new user from demographics needs the saved model: save() it, then open() the run")
        return foldin.user_from_features(self.run, self.P.shape[1], values, told)
