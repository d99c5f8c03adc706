"""The :class:`~embedrec.serve.recommender.Recommender`'s part that serves the new users' popularity prior
(serve.prior): which users carry it (those ``update-users`` added, or solved as new), their weights, their scores
and lists with it, and a request's own weight. A mixin: it reads the Recommender's arrays (``factors``, ``P``,
``seen_ptr``, ``run``, ``training_ratings``, ``untrained``) and calls its lists' helpers (``_finite``,
``_search_users``, ``solve_arrays``), never alone."""

from __future__ import annotations

import numpy as np

from embedrec.errors import UsageError
from embedrec.run_layout import SOLVED_AS_NEW, UPDATE_PAIRS, UPDATED_USERS
from embedrec.serve import prior
from embedrec.sparse import unique
from embedrec.verify import check_solved_as_new, check_update_pairs


class PriorServing:
    """:class:`~embedrec.serve.recommender.Recommender`'s methods of the new users' prior (serve.prior)."""

    def added_prior(self, rows: np.ndarray, given="auto", refuse: bool = True) -> dict[int, float]:
        """{row: w(n)} of the users among ``rows`` that ``update-users`` added to the run (rows from
        run_updates.trained_users on) whose list the run's new users' popularity prior weighs (w > 0, serve.prior):
        n the movies in the user's solve (its solve weights above 0), as ``recommend --liked/--rated`` of the same
        movies counts them, so an added user's list is the one the same ratings given per request get. Empty for
        trained users, runs without the prior, and models not built from a run. ``given``: a request's own weight
        (:meth:`prior_weight`: 'off' or a number; refused where none of ``rows`` is an added user, unless not
        ``refuse``: a stream's batch of trained users, the stream having checked the run once)."""
        auto = isinstance(given, str) and given.strip().lower() == "auto"
        table = (self.training_ratings.get("solve") or {}).get("newuser_prior", 0.0)
        added = self.added_rows(rows) if not auto or np.any(np.asarray(table) > 0) else np.zeros(0, np.int64)
        if not auto and not added.size and refuse:
            self.prior_weight(0, given)  # a trained user's list (or another model's): the refusal
        arrays = self.solve_arrays() if added.size else None
        if arrays is None:
            return {}
        out = {}
        for row in added.tolist():
            n = int(np.count_nonzero(np.asarray(arrays[0][int(self.seen_ptr[row]):int(self.seen_ptr[row + 1])]) > 0))
            w = prior.weight(table, n) if auto else self.prior_weight(n, given)
            if w > 0:
                out[row] = w
        return out

    def user_priors(self) -> np.ndarray | None:
        """c_u per user row (float32): the multiplier of z_m (:attr:`prior_z`) in the served score of each user
        update-users added or solved as new with the run's prior on (:meth:`added_prior`, :meth:`prior_scores`), 0
        for the others; None where no user has one. With it an export's tables give every served score:
        <p_u, q_m> + b_m + c_u z_m (a red team: the exported vectors alone ranked such users otherwise), to float
        rounding: the spreads from the movies' moments (serve.prior.spreads), not a product with every movie. Made
        once per opened model (an export asks three times, each audience once)."""
        kept = getattr(self, "_user_priors", None)  # (none in a Recommender pickled by an older embedrec)
        if kept is not None and kept[0] is self.P:
            return kept[1]
        c = self._made_user_priors()
        self._user_priors = (self.P, c)
        return c

    def _made_user_priors(self) -> np.ndarray | None:
        added = self.added_prior(np.arange(self.P.shape[0], dtype=np.int64), refuse=False)
        if not added:
            return None
        rows = np.fromiter(added, np.int64, len(added))
        w = np.fromiter((added[int(r)] for r in rows), np.float64, rows.size)
        sd = prior.spreads(np.asarray(self.P[rows]), self.factors.movie, self.factors.movie_bias, ~self.untrained)
        c = np.zeros(self.P.shape[0], np.float32)  # (as prior.scales: a spread of 0 counts 1)
        c[rows] = w * np.where(sd > 1e-12, sd, 1.0)
        c.flags.writeable = False  # (kept: every caller reads the same array)
        return c

    def check_stream_prior(self, given) -> None:
        """A weight given to a stream of users (``recommend --users --prior``): refused, as for one trained user,
        where the run holds no user update-users added (an als run's; :meth:`added_rows`); else it weighs those
        users' lists and leaves the trained users' as they are."""
        if isinstance(given, str) and given.strip().lower() == "auto":
            return
        prior.given_weight(given)  # no number: said first
        # the added users are the last rows (run_updates.trained_users on): the last row is one where any is, and
        # the first of the dataset's users an update solved as new ones (solved_as_new) where any is; added_rows
        # holds none for a model without a run, an explicit or a non-als one
        if not self.added_rows(np.r_[self.P.shape[0] - 1, self.solved_as_new()[:1]].astype(np.int64)).size:
            raise UsageError("«--prior with --users|prior= of recommend_stream» weighs the lists of the users "
                             "update-users added to an als model's run; this run holds none (its users are trained "
                             "ones, whose lists have no such prior): drop it")

    def added_rows(self, rows) -> np.ndarray:
        """The distinct rows among ``rows`` of users ``update-users`` added to an als run (run_updates.trained_users
        on), or solved as new ones where the dataset held them without a training rating (:meth:`solved_as_new`):
        new users told their ratings once, whose lists carry the new users' prior (:meth:`added_prior`; a request
        re-solving one with more movies too, models_recommend.recommend_new)."""
        first = getattr(self, "_first_added", None)  # (none in a Recommender pickled by an older embedrec)
        if first is None or first[0] is not self.run or first[1] != self.P.shape[0]:  # the row from which users are
            # added, and whether any is: read once for the run served (its manifest does not change under an open
            # model; a review: 34 us of every recommend call)
            solve = self.training_ratings.get("solve") or {}
            if self.run is None or self.explicit or solve.get("loss") != "als":
                row, any_added = -1, False
            else:
                from embedrec.run_updates import trained_users

                row = trained_users(self.run.manifest)
                any_added = row < self.P.shape[0] or self.solved_as_new().size > 0
            first = self._first_added = (self.run, self.P.shape[0], row, any_added)
        if not first[3]:
            return np.zeros(0, np.int64)
        rows = np.asarray(rows, np.int64).reshape(-1)
        new = rows >= first[2]
        as_new = self.solved_as_new()
        if as_new.size:
            new |= np.isin(rows, as_new)
        return unique(rows[new]) if new.any() else np.zeros(0, np.int64)

    def solved_as_new(self) -> np.ndarray:
        """The rows (sorted) of the dataset's users without a training rating (split.cold_start's, or one whose
        ratings all lie in valid or test) that update-users solved as new users (run_layout.SOLVED_AS_NEW: the
        fold-in's weights, so the vector the same ratings told per request give), read once and checked as verify
        checks them; empty where the run holds none (a trained model, one without a run)."""
        if getattr(self, "_as_new", None) is None:  # (none in a Recommender pickled by an older embedrec)
            got = None
            if self.run is not None:
                from embedrec.run_updates import users_as_new

                got = self.run.array(SOLVED_AS_NEW, optional=True)
                if got is not None or users_as_new(self.run.manifest):  # counted, the file gone: refused
                    got = check_solved_as_new(self.run, np.zeros(0, np.int64) if got is None else got,
                                              self.run.array(UPDATED_USERS, optional=True), self._solve_of(got))
            self._as_new = np.zeros(0, np.int64) if got is None else got
        return self._as_new

    def _solve_of(self, as_new: np.ndarray | None) -> tuple | None:
        """What check_solved_as_new needs to check that each of ``as_new`` has no training rating: the seen movies,
        the solve's weights and the update's pairs (checked as history reads them); None where it holds no row."""
        if as_new is None or not np.asarray(as_new).size:
            return None
        solve = self.solve_arrays()
        pairs = self.run.array(UPDATE_PAIRS, optional=True)
        if pairs is not None:
            check_update_pairs(self.run, pairs, self.P.shape[0], self.Q.shape[0])
        return self.seen_ptr, self.seen_idx, None if solve is None else solve[0], pairs

    def prior_offsets(self, users: np.ndarray, movies: np.ndarray) -> np.ndarray | None:
        """c_u z_m of each (user row, movie row) pair whose user update-users added (:meth:`added_prior`), 0 for
        the others; None where no pair's user has one: ``predict``'s score of such a pair is the one its list
        shows (a review: predict gave the factors' product, recommend 8 times it)."""
        users = np.asarray(users, np.int64)
        added = self.added_prior(users[users >= 0])
        if not added:
            return None
        rows = np.fromiter(added, np.int64, len(added))
        c = np.concatenate([self.prior_scores(np.asarray(self.P[rows[s0:s0 + self._prior_batch()]]),
                                              [added[int(r)] for r in rows[s0:s0 + self._prior_batch()]])[1]
                            for s0 in range(0, rows.size, self._prior_batch())])
        at = np.searchsorted(rows, users)  # (rows sorted: added_rows is np.unique's)
        hit = (at < rows.size) & (rows[np.minimum(at, rows.size - 1)] == users)
        out = np.zeros(users.size)
        out[hit] = c[at[hit]] * self.prior_z[np.asarray(movies, np.int64)[hit]]
        return out

    def _prior_batch(self) -> int:
        """How many users :meth:`prior_scores` scores at once: a block of about 2^22 scores (32 MB), which bounds its
        memory; per user it costs what one alone does (at 100K movies x 128, load 2: 3.6 ms a user in blocks of 41
        against 3.2 alone, each scored by its own matrix-vector product; larger blocks leave the cache; session 54).
        """
        return max(1, (1 << 22) // max(self.factors.n_movies, 1))

    def prior_scores(self, vectors: np.ndarray, weights) -> tuple[np.ndarray, np.ndarray]:
        """(scores, c) of user ``vectors`` (rows) over every movie with the new users' popularity prior at their
        ``weights`` (serve.prior): <p, q_m> + b_m + c z_m in float64, c = w x the std of the user's model scores
        over the trained movies (serve.prior.scales); one matrix product for them all, so a list, its
        explanation and ``predict`` read the same numbers."""
        f = self.factors
        V = np.asarray(vectors, f.movie.dtype).reshape(-1, f.movie.shape[1])
        Q = np.asarray(f.movie)
        # a product per user (a matrix-vector one): a user's numbers are the same alone as in any block (a review:
        # the block's matrix product differed by 1e-5, and swapped near-equal movies), at the same cost here
        S = np.empty((V.shape[0], Q.shape[0]), np.float64)
        for j in range(V.shape[0]):
            S[j] = Q @ V[j]
        if f.movie_bias is not None:
            S += np.asarray(f.movie_bias, np.float64)
        c = prior.scales(S, ~self.untrained, np.asarray(weights, np.float64))
        S += c[:, None] * self.prior_z
        return S, c

    def _prior_lists(self, vectors: np.ndarray, weights, k: int, excludes: list, allowed=None) -> list[tuple]:
        """[(movie rows, scores, c)] of each user vector's top-k with the prior at its weight
        (:meth:`prior_scores`): every trained movie scored, its ``excludes`` (movie rows) and the movies outside
        ``allowed`` left out, equal scores in row order. The block is ranked at once (one partition of its rows);
        a row with a tie at the k-th place is settled on its own."""
        total, c = self.prior_scores(vectors, weights)
        keep = ~self.untrained
        if allowed is not None:
            mask = np.zeros(keep.size, bool)
            mask[np.asarray(allowed, np.int64)] = True
            keep = keep & mask
        total[:, ~keep] = -np.inf
        sizes = [np.size(e) for e in excludes]
        if sum(sizes):
            total[np.repeat(np.arange(len(excludes)), sizes), np.concatenate(excludes).astype(np.int64)] = -np.inf
        kk = min(k, total.shape[1])
        if kk <= 0:
            return [(np.zeros(0, np.int64), np.zeros(0, np.float32), float(x)) for x in c]
        top = np.argpartition(-total, kk - 1, axis=1)[:, :kk]
        vals = np.take_along_axis(total, top, axis=1)
        order = np.lexsort((top, -vals))  # each row: by score, then movie row
        top, vals = np.take_along_axis(top, order, axis=1), np.take_along_axis(vals, order, axis=1)
        edge = vals[:, -1]
        tied = np.isfinite(edge) & ((total >= edge[:, None]).sum(axis=1) > kk)  # more movies at the cut than places
        out = []
        for j in range(total.shape[0]):
            if tied[j]:  # every movie at the k-th score, in row order (as a request's list settles them)
                t = total[j]
                rows = np.flatnonzero(t >= edge[j])
                rows = rows[np.lexsort((rows, -t[rows]))][:kk]
            else:  # (not the -inf of a left-out movie; a NaN or inf row reaches _finite's refusal: a review)
                rows = top[j][vals[j] > -np.inf]
            ids, scores = self._finite([rows], [total[j, rows].astype(np.float32)])
            out.append((ids[0], scores[0], float(c[j])))
        return out

    def prior_weight(self, n: int, given="auto") -> float:
        """w(n): the weight of the popularity prior in the list of a new user told ``n`` movies (serve.prior; an
        als run's ``train.als_newuser_prior``, recorded in its solve); 0 for other models and runs before it.
        ``given``: a request's own (``recommend --prior``): 'auto' (the run's), or a weight from 0 (UsageError
        where it is no number, or ``n`` is 0: a known user's list, or a model without the prior)."""
        solve = self.training_ratings.get("solve") or {}
        als = not self.explicit and solve.get("loss") == "als"
        if isinstance(given, str) and given.strip().lower() == "auto":
            return prior.weight(solve.get("newuser_prior", 0.0), n) if als else 0.0
        w = prior.given_weight(given)
        if not als or n <= 0:  # 'off' and 0 too: said where no prior applies (a review: they passed, 30 did not)
            raise UsageError("«--prior|prior=» weighs the most popular movies in a new user's list of an als model "
                             "(the default): one told «--liked/--rated|liked=/rated=» without «--user|user=», or "
                             "one update-users added; this list (a trained user's, re-solved or not, or another "
                             "model's) has no such prior: drop it")
        return w

    def new_user_prior(self, p: np.ndarray, n: int, given="auto") -> tuple[float, np.ndarray] | None:
        """(c, z_m) of the popularity prior in the scores of a new user of vector ``p`` told ``n`` movies (what
        :meth:`recommend_with_prior` adds, c z_m; an explanation's part of its own), None where its weight is 0;
        ``given``: the request's own weight (:meth:`prior_weight`)."""
        w = self.prior_weight(n, given)
        if w <= 0:
            return None
        return float(self.prior_scores(p, [w])[1][0]), self.prior_z

    @property
    def prior_z(self) -> np.ndarray:
        """z_m of the new users' popularity prior: each movie's standardised log(1 + training count) over the
        trained movies (serve.prior.standard_popularity), made once."""
        if self._prior_z is None:
            self._prior_z = prior.standard_popularity(self.popularity, ~self.untrained)
        return self._prior_z

    def recommend_with_prior(self, p: np.ndarray, k: int, exclude: np.ndarray, w: float, allowed=None):
        """(movie rows, scores, c) of a new user's top-k with its popularity prior at weight ``w`` (serve.prior):
        every trained movie scored exactly, <p, q_m> + b_m + c z_m with c = w x the std of the user's model scores;
        the movies in ``exclude`` and outside ``allowed`` left out, equal scores in row order (:meth:`_prior_lists`,
        which a user update-users added is listed by too)."""
        return self._prior_lists(np.asarray(p)[None, :], [w], k, [exclude], allowed)[0]
