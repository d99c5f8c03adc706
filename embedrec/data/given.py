"""split.method=given: the split the data gives, held out as it is, where embedrec would draw its own. The held-out
rows come from their own files (data.test_source, data.valid_source: each read as data.source is, in its columns,
format and encoding) or from RecBole's benchmark files (NAME.train.inter, NAME.valid.inter, NAME.test.inter, read
together). :func:`read_given` reads them into one table whose rows carry their part (column :data:`PART`), which the
cleaning keeps (a pair's repeats are merged within its part); :func:`given_assign` makes the cleaned rows' split
codes: each row's own part, valid drawn at random from the training rows (split.valid of them) where no validation
rows are given, and a held-out pair that an earlier part holds too left out of the later one (a list never shows a
movie the user rated in training, so such a test pair could only be missed; counted and said)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from embedrec.data.idtext import same_id_type
from embedrec.data.split import TEST, TRAIN, VALID, keep_users_in_train, random_split, user_time_split
from embedrec.errors import ConfigError, DataError

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import DataConfig, SplitConfig
    from embedrec.data.parsing import RawData

log = logging.getLogger("embedrec")

PART = "given_part"  # int8 column of the rows read (TRAIN, VALID, TEST): never written
PART_NAMES = {TRAIN: "train", VALID: "valid", TEST: "test"}
# RecBole's benchmark files by the part each holds (NAME.train.inter, ...)
RECBOLE_PARTS = {".train.inter": TRAIN, ".valid.inter": VALID, ".test.inter": TEST}


def given_files(cfg: DataConfig) -> list[tuple[int, str, str]]:
    """(part, path, config key) of each held-out file ``cfg`` names (data.test_source, data.valid_source)."""
    return [(code, path, f"data.{key}") for code, key in ((TEST, "test_source"), (VALID, "valid_source"))
            if (path := getattr(cfg, key)) is not None]


def check_held_out_file(path: str, key: str) -> None:
    """A held-out file (``key``: data.test_source, data.valid_source) that is not there, or standard input (read
    once, for data.source), refused before the output folder is touched."""
    if path == "-":
        raise ConfigError(f"config key '{key}': '-' (standard input) is read once, for data.source; give the "
                          "held-out rows' file")
    p = Path(path).expanduser()
    if not p.exists():
        parent = next((q for q in p.parents if q.exists()), None)
        where = f" ('{parent}' exists, '{p.relative_to(parent)}' in it does not)" \
            if parent not in (None, Path(".")) else ""
        raise DataError(f"config key '{key}': '{path}': file not found{where}; check the path", path=path)


def part_config(cfg: DataConfig, path: str) -> DataConfig:
    """data.source's settings for reading a held-out file ``path``: its columns, format and encoding, without the
    movies file (read once, with data.source) and the held-out files themselves."""
    return dataclasses.replace(cfg, source=path, movies=None, test_source=None, valid_source=None)


def read_given(raw: RawData, cfg: DataConfig, split_cfg: SplitConfig, read, progress: bool = False) -> RawData:
    """``raw`` (data.source as read) with each row's part in column :data:`PART`, under split.method=given; ``raw``
    as it is otherwise. ``read``: ``readers.read_source``, which reads each held-out file (data.test_source,
    data.valid_source) as data.source is read; their rows are appended after data.source's, which are training
    rows. RecBole's benchmark files read together (``raw.parts``) give each row the part its file is named for."""
    if split_cfg.method != "given":
        return raw
    extra = given_files(cfg)
    if raw.parts:
        if extra:
            raise ConfigError(f"config key '{extra[0][2]}': data.source '{cfg.source}' is RecBole's benchmark files, "
                              "which give the split themselves (NAME.train/valid/test.inter); leave "
                              f"{extra[0][2]} null")
        return _recbole_parts(raw, cfg)
    if not extra:
        raise ConfigError("config key 'split.method': given holds out the rows the data gives, and none is given; "
                          "name the test rows' file with «--set data.test_source=FILE|data.test_source='FILE'» (and "
                          "the validation rows' with data.valid_source), or give RecBole's NAME.train.inter and "
                          "NAME.test.inter")
    codes = [np.full(len(raw.ratings), TRAIN, np.int8)]
    for code, path, key in extra:
        try:
            other = read(part_config(cfg, path), progress)
        except DataError as e:  # its fix is data.source's too (a diff review: data.header=false, advised for a
            # test file without a header, then broke data.source's)
            if "no data rows" in e.raw:
                raise DataError(f"{key} '{path}': the file has no data rows; give the held-out rows' file, or leave "
                                f"{key} null") from None
            raise type(e)(f"{e.raw} ({key} is read with data.source's settings: give it data.source's layout, its "
                          "header, separator, columns and format)") from None
        _check_alike(raw, other, cfg, path, key)
        raw = _appended(raw, other)
        codes.append(np.full(len(other.ratings), code, np.int8))
    raw.ratings[PART] = np.concatenate(codes)
    raw.notes = [n for n in raw.notes if "holds a split made elsewhere" not in str(n)]  # (the files are the split:
    return raw  # a column telling it again is no news; a diff review: it advised split.method=given, given)


def _drawn_valid(ratings: pd.DataFrame, codes: np.ndarray, split_cfg: SplitConfig, report: dict) -> np.ndarray:
    """``codes`` with split.valid of the training rows drawn as valid, as the test rows stand to them: where the
    test rows come after their users' training rows (:data:`FOLLOWS_SHARE` of them or more at or after the user's
    latest training row: a per-user time split), each user's latest training rows (the user_time rule, ties drawn
    from split.seed), as the model then serves what users do next (ML-100K's per-user time split: test NDCG@10
    0.2268 with a time valid against 0.1942 with a random one); else at random (split.seed), a user whose every
    training row was drawn given one back. Said in ``report`` (``given_valid_drawn``, ``given_valid_by``,
    ``given_test_after_training``) and in the log."""
    train = np.flatnonzero(codes == TRAIN)
    users = ratings["user_id"].to_numpy()
    ts = ratings["timestamp"].to_numpy() if "timestamp" in ratings else None
    after, of = _after_training(users, ts, codes) if ts is not None else (0, 0)
    report["given_test_after_training"] = [after, of]
    if of and after >= FOLLOWS_SHARE * of:
        drawn = user_time_split(users[train], ts[train], split_cfg.valid, 0.0,
                                movies=ratings["movie_id"].to_numpy()[train], seed=split_cfg.seed)
        codes[train[drawn == VALID]] = VALID
        report["given_valid_by"] = "user_time"
        log.info("split.method=given: %s of the %s test rows come at or after their user's latest training row, so "
                 "valid is each user's latest %g of the training rows (as split.method=user_time draws it), to "
                 "tune for what users do next; give your own with data.valid_source", f"{after:,}", f"{of:,}",
                 split_cfg.valid)
    else:
        drawn = random_split(train.size, split_cfg.valid, 0.0, split_cfg.seed)
        codes[train[drawn == VALID]] = VALID
        codes, given = keep_users_in_train(codes, users, codes == TEST)
        if given:
            report["users_given_a_train_row"] = given
        report["given_valid_by"] = "random"
    report["given_valid_drawn"] = int(np.count_nonzero(codes == VALID))
    return codes


def _after_training(users: np.ndarray, ts: np.ndarray, codes: np.ndarray) -> tuple[int, int]:
    """(the test rows at or after their user's latest training row, the test rows of users with training rows)."""
    train, test = codes == TRAIN, codes == TEST
    if not train.any() or not test.any():
        return 0, 0
    latest = pd.Series(ts[train]).groupby(users[train]).max()
    at = pd.Series(users[test]).map(latest).to_numpy()
    known = ~pd.isna(at)
    return int(np.count_nonzero(ts[test][known] >= at[known].astype(ts.dtype))), int(np.count_nonzero(known))


def _recbole_parts(raw: RawData, cfg: DataConfig) -> RawData:
    """RecBole's benchmark files read together: each row's part by its file's name; one that names no part, or
    no test file, refused."""
    codes = np.empty(len(raw.ratings), np.int8)
    ends = [start for _, start in raw.parts[1:]] + [len(raw.ratings)]
    found = set()
    for (label, start), end in zip(raw.parts, ends):
        code = next((c for suffix, c in RECBOLE_PARTS.items() if label.endswith(suffix)), None)
        if code is None:
            raise DataError(f"{label}: split.method=given reads RecBole's NAME.train.inter, NAME.valid.inter and "
                            f"NAME.test.inter as the split, and this file is none of them; remove it from "
                            f"'{cfg.source}', or split at random («--set split.method=random|split.method='random'»)")
        codes[start:end] = code
        found.add(code)
    if TEST not in found or TRAIN not in found:
        lack = "NAME.test.inter" if TEST not in found else "NAME.train.inter"
        raise DataError(f"data.source '{cfg.source}': split.method=given found no {lack} among its RecBole files; "
                        "give the benchmark's files, or split at random («--set split.method=random|"
                        "split.method='random'»)")
    raw.ratings[PART] = codes
    return raw


def _check_alike(raw: RawData, other: RawData, cfg: DataConfig, path: str, key: str) -> None:
    """A held-out file must read as data.source does: the same columns (a time, a rating), the same kind of
    rows (ratings, events counted, event types weighed)."""
    mine, theirs = set(raw.ratings.columns), set(other.ratings.columns)
    if mine != theirs or raw.no_ratings != other.no_ratings or raw.weighted != other.weighted:
        def said(r: RawData, cols: set) -> str:
            kinds = ["a user", "a movie", "no rating (events)" if r.no_ratings else
                     "an event type" if r.weighted else "a rating"]
            if "timestamp" in cols:
                kinds.append("a time")
            return ", ".join(kinds)
        raise DataError(f"{key} ('{path}'): its rows have {said(other, theirs)}, where the rows of data.source "
                        f"('{cfg.source}') have {said(raw, mine)}; give both the same columns (the held-out rows are "
                        "read as data.source's are)")


def _appended(raw: RawData, other: RawData) -> RawData:
    """``raw`` with ``other``'s rows after its own (``other``: a held-out file read alone), the files read, the
    rows dropped and the pairs kept as seen added up; each part named in messages by its file (``parts``)."""
    a, b = raw.ratings, other.ratings
    for c in ("user_id", "movie_id"):  # one file's '007' makes both text (data.id_type auto)
        a[c], b[c] = same_id_type(a[c], b[c])
    for table, c in ((raw.movies, "movie_id"), (raw.users, "user_id")):  # data.source's movies or users file too
        if table is not None:
            a[c], table[c] = same_id_type(a[c], table[c])
            if a[c].dtype != b[c].dtype:
                b[c] = b[c].astype(a[c].dtype)
    parts = raw.parts or [(raw.origin[0], 0)]
    raw.parts = [*parts, (other.origin[0], len(a))]
    raw.ratings = pd.concat([a, b], ignore_index=True)
    raw.files = [*raw.files, *other.files]
    raw.notes = [*raw.notes, *other.notes]
    raw.missing_dropped += other.missing_dropped
    raw.scale_dropped += other.scale_dropped
    raw.bad_lines_skipped += other.bad_lines_skipped
    raw.bad_values_skipped += other.bad_values_skipped
    raw.kept = raw.line_of = raw.lines_of = None  # (lines named by part: its row and the first data line)
    for why, pairs in other.seen.items():  # (kept as seen, in train: ingestion._kept_as_seen)
        raw.seen[why] = pairs if why not in raw.seen else pd.concat([raw.seen[why], pairs], ignore_index=True)
    return raw


# the share of the test rows (of users with training rows) at or after their user's latest training row above
# which the test is taken for what users do next, and valid is drawn as each user's latest training rows: a random
# holdout puts about 1/(n+1) of a user's n+1 rows there (ML-100K's: 4%), a per-user time split all of them
FOLLOWS_SHARE = 0.5


def given_assign(ratings: pd.DataFrame, split_cfg: SplitConfig, report: dict,
                 kept_apart: pd.DataFrame | None = None) -> np.ndarray:
    """The split codes of the cleaned rows of a given split (their :data:`PART` column, removed here): each row's
    part; where no row is a validation one and split.valid is above 0, that share of the training rows drawn as
    valid (:func:`_drawn_valid`); a pair held out that an earlier part holds too (test after train or valid, valid
    after train) left out (-1) of the later part, counted in ``report["given_pairs_held_out_twice"]`` and warned
    of; so is one of the pairs the cleaning kept apart as rated in an earlier part (``kept_apart``: user_id,
    movie_id, PART; below data.min_rating), which no list shows either (a diff review: 295 such test pairs kept)."""
    codes = ratings.pop(PART).to_numpy(np.int8).copy()
    counts = {name: int(np.count_nonzero(codes == c)) for c, name in PART_NAMES.items()}
    report["given_rows"] = counts
    if not counts["valid"] and split_cfg.valid > 0:
        codes = _drawn_valid(ratings, codes, split_cfg, report)
    apart = kept_apart if kept_apart is not None and PART in kept_apart and len(kept_apart) else None
    n = len(ratings)
    u_all = pd.concat([ratings["user_id"], apart["user_id"]], ignore_index=True) if apart is not None else \
        ratings["user_id"]
    m_all = pd.concat([ratings["movie_id"], apart["movie_id"]], ignore_index=True) if apart is not None else \
        ratings["movie_id"]
    u = pd.factorize(u_all.to_numpy())[0].astype(np.int64)  # (the pairs held out twice)
    m = pd.factorize(m_all.to_numpy())[0].astype(np.int64)
    keys = u * np.int64(max(int(m.max(initial=0)) + 1, 1)) + m
    key = keys[:n]
    apart_parts = apart[PART].to_numpy() if apart is not None else np.zeros(0, np.int8)
    twice = {}
    before = np.concatenate([key[codes == TRAIN], keys[n:][apart_parts == TRAIN]])
    for code in (VALID, TEST):
        rows = np.flatnonzero(codes == code)
        again = rows[pd.Series(key[rows]).isin(before).to_numpy()]  # (hashed)
        if again.size:
            codes[again] = -1
            twice[PART_NAMES[code]] = int(again.size)
        before = np.concatenate([before, key[rows[codes[rows] == code]], keys[n:][apart_parts == code]])
    if twice:
        report["given_pairs_held_out_twice"] = twice
        said = " and ".join(f"{n:,} {name} pair{'' if n == 1 else 's'}" for name, n in twice.items())
        log.warning("split.method=given: %s also in an earlier part (test after train or valid, valid after train): "
                    "left out of the later part, as a list never shows a movie the user rated before (remove those "
                    "rows from the held-out file to keep the counts as given)", said)
    return codes
