"""The rating values ingest reads, checked before any row is cleaned: each present, finite and within bounds, the
rating scale (the config's, the layout's or the data's) and a data.min_rating that no rating passes
(:func:`check_ratings`); the warnings of a scale read from the data (a lone extreme value, counts read as ratings),
and the line of one that spans no usual scale (:func:`scale_note`); data.min_rating: auto's floor of a like/dislike
table (:func:`like_floor`) and the two values above 0 it cannot tell apart (:func:`two_positive_values`,
:func:`two_values_warning`); the note of a scale heaped at 0, which may mean 'seen, not rated'
(:func:`zeros_note`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from embedrec.data.levels import MAX_LEVELS, TOLERANCE, scale_step
from embedrec.data.parsing import WarnedNote, check_scale, scale_span
from embedrec.errors import ConfigError, DataError
from embedrec.sparse import unique

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import DataConfig
    from embedrec.data.parsing import RawData

log = logging.getLogger("embedrec")
MAX_RATING = 1e9  # larger (or infinite) ratings are refused: float32 training would overflow or diverge


def like_floor(r: np.ndarray) -> float | None:
    """data.min_rating: auto's value for the ratings ``r``: on a like/dislike scale (at most three distinct values,
    some 0 or below, some above 0: 0/1, -1/1, -1/0/1) its lowest value above 0, so that the dislikes are kept apart
    as rated rather than learnt as likes (an independent check, ML-100K's ratings as 0/1 likes: the ranking model
    0.0138 behind implicit ALS with the 0s learnt as likes, 0.0068 ahead without them); None on any other scale
    (a star scale's lowest star is a rating, not a dislike)."""
    if not r.size:
        return None
    low, high = float(r.min()), float(r.max())
    if low > 0 or high <= 0:
        return None
    middle = r[(r != low) & (r != high)]
    if middle.size and (middle != middle[0]).any():  # a fourth value: a scale, not likes and dislikes
        return None
    values = [v for v in (low, float(middle[0]) if middle.size else None, high) if v is not None]
    return min(v for v in values if v > 0)


def two_positive_values(r: np.ndarray) -> tuple[float, float] | None:
    """(low, high) where the ratings ``r`` hold exactly two distinct values, both above 0; else None. Such a file
    may be likes and dislikes (thumbs coded 1/2), two strengths of a like (view 1, purchase 2; 4 and 5 stars kept)
    or the reverse coding (a survey's yes 1, no 2): data.min_rating: auto cannot tell, so it sets no floor and
    ingest says so (:func:`two_values_warning`)."""
    if not r.size:
        return None
    low, high = float(r.min()), float(r.max())
    if low <= 0 or low == high or np.count_nonzero((r != low) & (r != high)):
        return None
    return low, high


def two_values_warning(r: np.ndarray, low: float, high: float) -> tuple:
    """The warning (a format and its arguments, for log.warning) of ratings of two values above 0 that
    data.min_rating: auto kept both as likes: each value's rows, and the setting for either reading."""
    n_low = int(np.count_nonzero(r == low))
    return ("the ratings hold two values, %g (%s) and %g (%s), both above 0, so data.min_rating: auto learns "
            "both as likes; if %g is a dislike (thumbs down %g, up %g), ingest with «--set data.min_rating=%g» (the "
            "%gs then kept apart as rated, never recommended back); if both are likes (a view %g, a purchase %g), "
            "«--set data.min_rating=null|data.min_rating=None» keeps both without this warning", low,
            f"{n_low:,} row{'' if n_low == 1 else 's'}", high,
            f"{r.size - n_low:,}", low, low, high, high, low, low, high)


ZERO_SHARE = 0.25  # 0s at least this share of the rows, and more than ZERO_OVER times the next most common value
ZERO_OVER = 2.0


def zeros_note(raw: RawData, r: np.ndarray) -> tuple | None:
    """The info line (a format and its arguments, for log.info) of a scale whose lowest value, 0, holds a large share
    of the rows (at least ZERO_SHARE, and more than ZERO_OVER times as many as any other value) on a scale of four
    values or more (likes and dislikes are :func:`like_floor`'s): Book-Crossing's 0 means 'read, not rated' (60% of
    its rows), which an explicit model would learn as ratings of 0 (a first-hour review: not noticed); the
    ranking model, which counts every row as a positive, needs nothing. None where that is not so: a 1-5 or 0.5-5
    scale (no 0), a 0-5 or 0-10 scale whose 0s are few."""
    if not r.size or float(r.min()) != 0.0:
        return None
    sample = r[::max(1, r.size // 1_000_000)]  # the values' shares, from at most a million rows
    values, counts = np.unique(sample, return_counts=True)
    if values.size < 4 or counts[0] < ZERO_SHARE * sample.size:
        return None
    nxt = int(np.argmax(counts[1:])) + 1  # the next most common value
    if counts[0] <= ZERO_OVER * counts[nxt]:
        return None
    zeros = int(np.count_nonzero(r == 0))
    return ("note: %s: %s of %s ratings (%.0f%%) are 0, the lowest of a %g-%g scale and %.1f times the next most "
            "common value (%g): in some data 0 means seen but not rated (Book-Crossing's 'read, not rated'); the "
            "ranking model (model.objective: implicit, the default) counts every row as a positive, so it needs "
            "nothing, but an explicit model would learn them as ratings of 0: for one, ingest with "
            "«--set data.min_rating=%g» (the 0s then kept apart as rated, never recommended back)", raw.origin[0],
            f"{zeros:,}", f"{r.size:,}", 100 * zeros / r.size, 0.0, float(r.max()), counts[0] / counts[nxt],
            float(values[nxt]), float(values[1]))


def scale_values(raw: RawData) -> str:
    """'0 and 1': the distinct ratings of a like/dislike table, for a note."""
    values = [f"{v:g}" for v in sorted(raw.ratings["rating"].unique().tolist())]  # hashed: no sort of every row
    return ", ".join(values[:-1]) + " and " + values[-1] if len(values) > 1 else values[0]


def check_ratings(raw: RawData, cfg: DataConfig, notes: list | None = None) -> tuple[float, float]:
    """Every rating present, finite and within bounds; returns the rating scale (config, layout, or data).
    ``notes``: where given, gains the line (log arguments, :func:`scale_note`) saying a scale read from the data that
    spans no usual one, for the caller to say once the rows are read (an error before then stays the one line)."""
    if cfg.out_of_scale == "drop" and cfg.rating_scale is None and raw.rating_scale is None:  # (nothing to drop;
        # said before a warning of the data's scale would be)
        raise ConfigError("config key 'data.out_of_scale': drop drops the rows whose rating is outside "
                          "data.rating_scale, which is not set (the scale is then the data's range, which holds every "
                          "row); set the scale too, e.g. «--set data.rating_scale=[1,5]»")
    ratings = raw.ratings
    if ratings["rating"].isna().any():
        row = int(np.flatnonzero(ratings["rating"].isna().to_numpy())[0])
        raise DataError(f"{raw.where(row)}: rating is missing; fix or remove {raw.that}")
    r = ratings["rating"].to_numpy(np.float64)
    bad = ~np.isfinite(r) | (np.abs(r) > MAX_RATING)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        what = f"is beyond {MAX_RATING:g}" if np.isfinite(r[row]) else \
            f"is not a finite number (a value beyond {np.finfo(np.float32).max:.2g} reads as inf)"
        raise DataError(f"{raw.where(row)}: rating {r[row]:g} {what}; fix or remove {raw.that}")
    if cfg.rating_scale is not None:
        scale = (float(cfg.rating_scale[0]), float(cfg.rating_scale[1]))
    elif raw.rating_scale is not None:
        scale = raw.rating_scale
    else:
        scale = (float(ratings["rating"].min()), float(ratings["rating"].max()))
        fair = _warn_lone_extremes(r, scale, raw)  # each says the scale it read, and how to set another
        warned = fair != scale
        if cfg.repeats != "sum":  # (of the rows a lone extreme warned of aside: a 101 in a 1-100 file, a red team)
            warned = _warn_counts_read_as_ratings(r, fair, ratings) or warned
        # (not of counts, summed or weighed events, nor a table without ratings: no star scale to widen)
        if notes is not None and not warned and cfg.repeats != "sum" and not raw.no_ratings and not raw.weighted:
            note = scale_note(raw, scale)
            if note:
                notes.append(note)
    if cfg.repeats == "sum" and cfg.min_rating in (None, "auto") and not raw.weighted and not raw.no_ratings:
        _warn_counts_below_one(raw, r)  # (a floor set keeps such pairs apart: nothing to say)
    dropped = check_scale(raw, scale, drop=cfg.out_of_scale == "drop")
    if dropped:  # said once the rows are read, as the other notes of how they were read (an error stays the one line)
        raw.notes.append(WarnedNote(dropped))
        r = raw.ratings["rating"].to_numpy(np.float64)
    floor = None if cfg.min_rating == "auto" else cfg.min_rating  # auto is at most the highest rating
    if floor is not None and floor > float(r.max()) and cfg.repeats == "sum":
        # under data.repeats=sum it thresholds the sums, a minimum count (a review: the rows' check refused one)
        top = float(ratings.groupby(["user_id", "movie_id"], sort=False)["rating"].sum().max())
        if floor > top:
            raise ConfigError(f"config key 'data.min_rating': {floor:g} is above every summed rating (the "
                              f"highest sum of a pair's rows is {top:g}), so no pair would be kept; lower "
                              "data.min_rating or leave it out")
    elif floor is not None and floor > float(r.max()):  # a threshold nothing passes: said first
        plain = "; a file without a rating column counts each row as 1" if r.min() == r.max() == 1 else ""
        raise ConfigError(f"config key 'data.min_rating': {floor:g} is above every rating in the data (the "
                          f"highest is {r.max():g}{plain}), so no row would be kept; lower data.min_rating or leave "
                          "it out")
    return scale


# The rating scales a ratings file commonly spans, read from its data without a word: 1-5 stars (ML-100K and ML-1M,
# Netflix, Amazon, Yelp), 0.5-5 by halves (the later MovieLens releases), 0-5, 1-10 and 0-10 (Book-Crossing, anime
# lists); likes and dislikes (0/1, -1/1) or likes alone (every row 1)
STAR_SCALES = ((1.0, 5.0), (0.5, 5.0), (0.0, 5.0), (1.0, 10.0), (0.0, 10.0))
PERCENT_SCALES = ((1.0, 100.0), (0.0, 100.0))  # a score out of 100, which a scale note may name as the wider one
USUAL_SCALES = (*STAR_SCALES, (0.0, 1.0), (-1.0, 1.0), (1.0, 1.0))


def scale_note(raw: RawData, scale: tuple[float, float]) -> tuple | None:
    """The info line (a format and its arguments, for log.info) of a scale read from the data, its lowest and highest
    ratings, that is none of USUAL_SCALES, with the data.rating_scale that sets the scale the data may fall short
    of (the smallest of STAR_SCALES that holds them); None for a usual one. A first-hour review: a file holding
    ratings 3-5 alone was given the scale 3-5 without a word, and update-users then refused a rating of 2 as outside
    it, as Surprise users would have set Reader(rating_scale=(1, 5))."""
    if scale in USUAL_SCALES:
        return None
    wider = next((s for s in (*STAR_SCALES, *PERCENT_SCALES) if s[0] <= scale[0] and scale[1] <= s[1] and s != scale),
                 None)
    setting = f"[{wider[0]:g},{wider[1]:g}]" if wider else "[LOW,HIGH]"
    said = scale_span(*scale)
    # whole numbers above a star scale's, each pair once (_warn_counts_read_as_ratings passed them as a scale): they
    # may be counts all the same
    counts = "; if they are counts, such as plays, «--set data.repeats=sum» weighs each pair by its count" \
        if scale[1] > 10 and scale[0] >= 0 and bool((raw.ratings["rating"] % 1 == 0).all()) else ""
    return ("%s: rating scale %s, the lowest and highest ratings it holds (update-users and «--rated|rated» refuse a "
            "rating outside it; a predicted one is clipped to it); if the scale is wider, ingest with "
            "«--set data.rating_scale=%s»%s", raw.origin[0], said, setting, counts)


def _warn_counts_below_one(raw: RawData, r: np.ndarray) -> None:
    """data.repeats=sum adds a pair's rows up as a count: rows of 0 or below on a scale of more than three values
    (likes and dislikes are dislikes_warning's) take from their pair's count, and a pair counted 0 or below is
    still learnt as a positive (an own-data review: a play log's -5s and 0s trained without a word but the counts'
    range): said with the first such line, and the floor that keeps such pairs apart."""
    low = r <= 0
    if not low.any() or unique(r).size <= 3:
        return
    first = int(np.flatnonzero(low)[0])
    n = int(np.count_nonzero(low))
    raw.notes.append(WarnedNote(
        f"{raw.where(first)}: a count of {r[first]:g}, in a log whose rows data.repeats=sum adds up as each pair's "
        f"count ({n:,} row{' is' if n == 1 else 's are'} 0 or below): such a row takes from its pair's count, and a "
        "pair counted 0 or below is still learnt as a positive; fix those rows, or ingest with «--set "
        "data.min_rating=1» to keep pairs counted below 1 apart (never recommended back, not learnt)"))


def _warn_counts_read_as_ratings(r: np.ndarray, scale: tuple[float, float], ratings=None) -> bool:
    """Whole numbers from 0 up, beyond any star scale (above 10) and of more than MAX_LEVELS values, are counts
    (plays, clicks: Last.fm's user_artists weight) more likely than ratings: the ranking model takes a rating as a
    positive alone, so say how to weigh them (an independent check: a play-count column was read as 350 distinct
    ratings and left unused; data.repeats=sum gained 0.0068 test NDCG@10, SE 0.0012). Not where they stay within
    100 and no (user, movie) pair is rated twice (``ratings``' user_id and movie_id): a score out of 100, which
    the scale's note names (a first-hour review: a 1-100 file was called counts and told data.repeats=sum); unless
    they pile up at the low end (:func:`_piled_low`), as play counts do and scores do not."""
    if scale[0] < 0 or scale[1] <= 10:
        return False
    sample = r[::max(1, r.size // 1_000_000)]
    if not np.all(sample == np.round(sample)):
        return False
    values, counts = np.unique(sample, return_counts=True)
    levels = values.size
    if levels <= MAX_LEVELS:
        return False
    if scale[1] <= 100 and ratings is not None and not _piled_low(sample, values, counts) \
            and not ratings.duplicated(["user_id", "movie_id"]).any():
        return False
    log.warning("the ratings are whole numbers from %g up to %s (%s distinct values in a sample): counts, such as plays or "
                "clicks, rather than ratings? the ranking model counts a rating as a positive alone "
                "(train.als_rating_weight 0), so they would go unused; to weigh each pair by 1 + log(count) "
                "(train.als_count_weight), ingest with --set data.repeats=sum", scale[0], f"{scale[1]:,.0f}",
                f"{levels:,}")
    return True


def _piled_low(sample: np.ndarray, values: np.ndarray, counts: np.ndarray) -> bool:
    """Whole numbers heaped at their low end, as play counts are (Pareto: most 1, a few up to 100): the most common
    value is the lowest and the median at most 3 (a review: such a file of one row per pair was read as a 1-100 scale
    with an info note alone, the counts warning silenced)."""
    return bool(values[int(np.argmax(counts))] == values[0] and np.median(sample) <= 3)


def _warn_lone_extremes(r: np.ndarray, scale: tuple[float, float], raw: RawData) -> tuple[float, float]:
    """A scale read from the data whose top or bottom value sits on a handful of rows apart from a discrete scale
    (one 7 in a 1-5 file: a typo) would stretch it, and every predicted rating with it: say so, with the line and
    the fix. Not for counts or other continuous values (more than MAX_LEVELS values), nor for a gap of one step (a 6
    may be a 1-6 scale's), nor when every other row holds one value (0/1 data); except past a score out of 100 (the
    other rows whole numbers from 0 or above up to 100, the value past them no usual scale's end): a red team's lone
    101 in a 1-100 file was called counts, its row unnamed. Returns the scale of the other rows: ``scale`` where
    nothing was warned of."""
    if r.size < LONE_MIN_ROWS:
        return scale
    fair = scale
    lone = max(1, r.size // 10_000)  # at most 0.01% of the rows (and one row below 20,000)
    sample = r[::max(1, r.size // 1_000_000)]  # the scale's levels, from at most a million rows
    for end, value in (("top", scale[1]), ("bottom", scale[0])):
        at = r == value
        n = int(np.count_nonzero(at))
        if not 0 < n <= lone:
            continue
        rest = unique(sample[sample != value])
        step = scale_step(rest)  # (the rule a served rating's step is checked by)
        np.logical_not(at, out=at)  # the other rows, without a copy of 100M ratings
        nxt = float(r.max(where=at, initial=-np.inf) if end == "top" else r.min(where=at, initial=np.inf))
        far = float(r.min(where=at, initial=np.inf) if end == "top" else r.max(where=at, initial=-np.inf))
        np.logical_not(at, out=at)
        others, wider = ((far, nxt), (far, value)) if end == "top" else ((nxt, far), (value, far))
        # the other rows a score out of 100 in whole numbers (up to 100, from 0 or above), the lone value past it no
        # other usual scale's end
        percent = others[1] == 100 and others[0] >= 0 and wider not in (*PERCENT_SCALES, *USUAL_SCALES) and \
            bool(np.all(rest == np.round(rest)))
        if not percent and (step is None or abs(value - nxt) <= step * (1 + TOLERANCE)):
            continue
        row = int(np.flatnonzero(at)[0])
        fair = (fair[0], nxt) if end == "top" else (nxt, fair[1])
        # (the fix that keeps the file and the scale, data.out_of_scale=drop, named first: a first-hour review found
        # only the refusal offered)
        log.warning("%s: rating %g is on %s of %s rows, %s every other (%g), so the rating scale is taken as "
                    "%s; if it is %s, fix %s, or drop %s with «--set data.rating_scale=[%g,%g] --set "
                    "data.out_of_scale=drop|data.rating_scale=[%g, %g], data.out_of_scale='drop'» (or refuse %s "
                    "with data.rating_scale alone)",
                    raw.where(row, cheap=True), value, f"{n:,}", f"{r.size:,}",
                    "above" if end == "top" else "below", nxt, scale_span(*scale), scale_span(*fair),
                    "that row" if n == 1 else "those rows", "it" if n == 1 else "them", *fair, *fair,
                    "it" if n == 1 else "them")
    return fair


LONE_MIN_ROWS = 100  # fewer rows: a lone top or bottom value may well be the scale's own (one 5 among ten rows)

