"""``embedrec ingest``: any MovieLens layout or ratings table -> a clean, indexed, split dataset on disk.

The workflow: :func:`ingest` checks the output folder and holds its lock, ``_ingest`` reads the source
(``data/readers.py``), checks the ratings (``data/ratings.py``), matches them to the movies file,
:func:`clean`s them (repeated pairs by ``data/repeats.py``, the threshold, the k-core filter), splits them
(``data/assign.py``), builds the tables and writes the dataset with its summary (``data/summary.py``)."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from embedrec import __version__, bars
from embedrec.bars import stages, step
from embedrec.data.assign import assign_splits, pair_columns, rated_below, rated_below_unknown, split_below
from embedrec.data.dataset import (
    dataset_rows,
    publish_dataset,
    refuse_changed_flat,
    refuse_foreign,
    replaced_counts,
    shrunk_said,
    write_dataset,
)
from embedrec.data.given import PART, check_held_out_file, given_files, read_given
from embedrec.data.layout import FORMAT_VERSION, is_dataset, read_manifest
from embedrec.data.parsing import WarnedNote, missing_dropped_said
from embedrec.data.ratings import (
    check_ratings,
    like_floor,
    scale_values,
    two_positive_values,
    two_values_warning,
    zeros_note,
)
from embedrec.data.readers import check_source, read_source, source_files
from embedrec.data.repeats import PairEvents, dedupe_rows, duplicate_rows, first_new_pairs, sum_repeats
from embedrec.data.split import TEST, TIME_METHODS, TRAIN, VALID
from embedrec.data.summary import format_summary, say_ties, summarise, warn_empty_splits, warn_shrunk_splits
from embedrec.data.times import NO_TIME
from embedrec.errors import ConfigError, DataError, EmbedrecError, OutputExists
from embedrec.fsutil.files import cache_dir, io_error, note_made
from embedrec.fsutil.locks import target_lock
from embedrec.fsutil.outputs import (
    check_replaceable,
    refuse_cwd,
    refuse_dangling,
    refuse_inside_store_through,
    remove_made,
    through_missing,
)

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config, DataConfig, SplitConfig

__all__ = ["clean", "format_summary", "ingest"]  # format_summary: embedrec ingest's lines, the CLI's import

log = logging.getLogger("embedrec")

STAGES = 5  # the named stages of ingest's bar between the parse and the write (_ingest's stage() calls)


def _stamps(cfg: DataConfig) -> dict[str, tuple]:
    """Each file ingest is about to read (``readers.source_files``: the source's, data.movies) by its absolute path,
    stamped (``integrity.read_stamp``) before a byte of it is read; none for a release by its name (its cached copy,
    checked as it is read) or standard input, nor where the source cannot be listed (``read_source`` says why)."""
    import os

    from embedrec.fsutil.integrity import read_stamp

    try:
        files = source_files(cfg) or []
    except (DataError, OSError):
        return {}
    stamps = {}
    for p in files:
        try:
            stamps[os.path.abspath(p)] = read_stamp(p)
        except OSError:
            continue
    return stamps


def _sha256(paths: list[Path], before: dict[str, tuple]) -> dict[str, str]:
    """Each file read's SHA-256 by name (the manifest's ``inputs``), refused where a file stamped ``before`` it was
    read is not the same file once hashed (``integrity.sha256_as_read``: replaced, written to or removed while
    ingest read it), so that the rows and the checksum recorded beside them are of one file (a known gap: the file
    read again after its rows were read recorded a file replaced meanwhile by the new file's checksum). A
    DataFrame's cache file is compared without its times (another call's ``mark_read`` sets them; its name is its
    content's hash)."""
    import os

    from embedrec.data.frames import cached_frame
    from embedrec.fsutil.integrity import sha256_as_read

    names = [p.name for p in paths]  # by name; two files of one name (a/r.csv, b/r.csv: a given split's) by path,
    # so that neither checksum is lost (a diff review), the dataset then never reused as the same data (_source_files)
    return {(p.name if names.count(p.name) == 1 else str(p)):
            sha256_as_read(p, before.get(os.path.abspath(p)), "the ingest", times=not cached_frame(str(p)))
            for p in paths}


def same_file_alike(settings: dict, keys=("source", "movies")) -> dict:
    """``settings`` with each of ``keys`` that names a file or folder there is now given as its resolved path, so
    that 'r.csv', './r.csv' and '/home/me/r.csv' compare alike (a red team: cross-validate refused its own folds as
    'another config (data.source r.csv, now ./r.csv)', and only --fresh, redoing every fold, went on); a release
    name or a path that is not there is kept as given."""
    import os

    out = dict(settings)
    for key in keys:
        value = out.get(key)
        if isinstance(value, str) and value not in ("", "-"):
            path = os.path.expanduser(value)
            if os.path.exists(path):
                out[key] = os.path.realpath(path)
    return out


def same_settings(manifest: dict, cfg: Config) -> bool:
    """Whether the dataset of ``manifest`` was ingested with ``cfg``'s data.* and split.* settings (its recorded
    config; data.prepared and data.cache_dir, where it is kept and where releases are cached, aside): a rerun's
    reuse check, ``er.ingest``'s and ``cross-validate``'s folds'."""
    import json

    from embedrec.config import Config

    recorded = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    now, defaults = cfg.to_dict(), Config().to_dict()
    for section in ("data", "split"):  # a key added since the record was written: its default (a review: every
        given = recorded.get(section) if isinstance(recorded.get(section), dict) else {}  # older record differed)
        a = {k: v for k, v in {**defaults[section], **given}.items() if k not in ("prepared", "cache_dir")}
        b = {k: v for k, v in now[section].items() if k not in ("prepared", "cache_dir")}
        if section == "data":  # a file named another way is the same file (its bytes: the inputs' SHA-256)
            a, b = same_file_alike(a), same_file_alike(b)
        if json.loads(json.dumps(a, default=str)) != json.loads(json.dumps(b, default=str)):
            return False
    return True


def ingested_alike(out: str | Path, cfg: Config) -> bool:
    """Whether the dataset at ``out`` was ingested from the data ``cfg`` names as it is now, with its settings: its
    manifest's data.* and split.* settings :func:`same_settings`, and every input it records (each file's SHA-256,
    by name: ``inputs``) one of the source's files now (``data.source``, a release's cached copy, ``data.movies``)
    with that SHA-256. False where anything differs or cannot be compared (no manifest, a stream, a release not in
    the cache, a name found twice). What lets ``er.ingest`` rerun on the same DataFrame (a dataset named by its
    content's hash) return the dataset it made, where it refused (a first-hour review)."""
    from embedrec.fsutil.integrity import sha256_file

    out = Path(out)
    try:
        manifest, _ = read_manifest(out / "current" if (out / "current").exists() else out, out)
    except (EmbedrecError, OSError, ValueError):
        return False
    recorded = manifest.get("inputs")
    if not isinstance(recorded, dict) or not recorded or not same_settings(manifest, cfg):
        return False
    files = _source_files(cfg.data)
    if files is None or any(name not in files for name in recorded):
        return False
    if isinstance(files, _ReadNow) and set(files) != set(recorded):  # a file new beside the source: other data
        return False
    try:
        return all(isinstance(want, str) and sha256_file(files[name]) == want for name, want in recorded.items())
    except OSError:
        return False


class _ReadNow(dict):
    """:func:`_source_files`' answer for a source other than a cached release: exactly the files ingest reads now
    (``data.readers.source_files``), so a file added beside them is other data."""


def _source_files(data: DataConfig) -> dict[str, Path] | None:
    """The files ``data`` reads, by name: those ingest reads now (``data.readers.source_files``, as cross-validate
    finds them: a :class:`_ReadNow`), or a release's in the cache (named by its name; where it is there and
    complete); None where a name is found twice, a stream or a release not cached is read, or the source cannot be
    read."""
    import os

    from embedrec.data.sources import COMPLETE, NAMED, release_folders

    src = str(data.source)
    if src in NAMED and not os.path.lexists(src):  # where sources.fetch_named finds it (nothing fetched or moved)
        found = [f for f in release_folders(src, cache_dir(data.cache_dir)) if (f / COMPLETE).is_file()][:1]
        files: dict[str, Path] = {}
        for q in sorted(q for q in found[0].rglob("*") if q.is_file() and q.name != COMPLETE) if found else []:
            if q.name in files:
                return None
            files[q.name] = q
        return files or None
    try:
        now = source_files(data)
    except (DataError, OSError):
        return None
    read = _ReadNow()
    for q in now or ():
        if q.name in read and read[q.name] != q:
            return None
        read[q.name] = q
    return read or None


REPEATS_WARN_SHARE = 0.1  # repeated pairs dropped above this share of the rows: said, with data.repeats=sum


def _merged_repeats(ratings: pd.DataFrame, cfg: DataConfig, report: dict, first_time: bool,
                    events: list | None) -> pd.DataFrame:
    """:func:`clean`'s first step: rows repeating a (user, movie) pair summed (data.repeats=sum) or its latest kept,
    exact duplicates dropped where asked; the counts in ``report``."""
    if cfg.repeats == "sum":
        if cfg.duplicates == "drop" and "timestamp" not in ratings:
            raise DataError("data.duplicates=drop drops rows the same in user, movie, rating and time, and the "
                            "ratings have no time column: without times such rows are a count's events, which "
                            "data.repeats=sum sums; leave data.duplicates at keep (or read a time column: "
                            "data.columns.timestamp)")
        # rows the same in user, movie, rating and time (a tracking double-fire): dropped first, or summed as events
        # and counted by the sum's own sort
        again = duplicate_rows(ratings) if cfg.duplicates == "drop" else None
        if again is not None:
            ratings = ratings[~again]
            report["exact_duplicates_dropped"] = int(np.count_nonzero(again))
        exact: list[int] = []
        ratings, n_rows, n_pairs = sum_repeats(ratings, first_time, events, exact)
        if exact and exact[0]:
            report["exact_duplicates_summed"] = exact[0]
        report["repeated_rows_summed"] = n_rows
        report["repeated_pairs_summed"] = n_pairs
    else:
        rows, n_exact, n_repeated = dedupe_rows(ratings)
        if rows is not None:  # each pair's latest row, where its first line was (the split draws by row order)
            ratings = ratings.take(rows)
        report["exact_duplicates_dropped"] = n_exact
        report["repeated_pairs_dropped"] = n_repeated
    return ratings


def clean(ratings: pd.DataFrame, cfg: DataConfig, report: dict, below: list | None = None,
          k_core: list | None = None, first_time: bool = False, events: list | None = None) -> pd.DataFrame:
    """Drop repeated rows (the same in the columns read), keep the latest of repeated (user, movie)
    (data.repeats=sum: sum them, see :func:`sum_repeats`), threshold, k-core. Counts go in report; ``below`` (a list) receives the (user_id,
    movie_id) pairs dropped by data.min_rating: rated, so never recommended (Dataset.rated_below); ``k_core`` those
    the k-core filter drops (for the users it leaves out: Dataset.rated_below_unknown). ``first_time`` and
    ``events``: what a time split of summed pairs reads (:func:`sum_repeats`). The threshold and the k-core filter
    take each summed pair whole, its every event counted."""
    total = len(ratings)
    if PART in ratings and ratings[PART].nunique() > 1:  # a given split: a pair's repeats merged within its part
        pieces, counts = [], {}
        for code in sorted(pd.unique(ratings[PART])):
            piece = {}
            pieces.append(_merged_repeats(ratings[(ratings[PART] == code).to_numpy()], cfg, piece, first_time,
                                          events))
            for k, v in piece.items():
                counts[k] = counts.get(k, 0) + v
        ratings = pd.concat(pieces, ignore_index=True)
        report.update(counts)
    else:
        ratings = _merged_repeats(ratings, cfg, report, first_time, events)
    again = report.get("repeated_pairs_dropped", 0) + report.get("exact_duplicates_dropped", 0)
    if cfg.repeats != "sum" and total and again >= REPEATS_WARN_SHARE * total:  # a first-hour pass: 42% of a
        # log's rows dropped, counted in the summary alone (exact copies too: a play log of identical rows, a review)
        log.warning("%s of the %s rows (%.0f%%) %s a (user, movie) pair already rated: each pair keeps its "
                    "latest row (data.repeats=latest); if they are plays or clicks to count, ingest with "
                    "«--set data.repeats=sum|data.repeats='sum'»", f"{again:,}", f"{total:,}",
                    100 * again / total, "repeats" if again == 1 else "repeat")
    if cfg.min_rating is not None:
        n2 = len(ratings)
        kept = ratings["rating"].to_numpy() >= cfg.min_rating
        if below is not None and not kept.all():  # the pairs, and the users with a rating at or above it
            below.append(ratings.loc[~kept, pair_columns(ratings)].reset_index(drop=True))
            below.append(ratings.loc[kept, "user_id"].unique())
        ratings = ratings[kept]
        report["below_min_rating_dropped"] = n2 - len(ratings)
    if cfg.min_user_ratings > 1 or cfg.min_movie_ratings > 1:
        n3 = len(ratings)
        rounds = 0
        while True:
            rounds += 1
            uc = ratings["user_id"].map(ratings["user_id"].value_counts())
            mc = ratings["movie_id"].map(ratings["movie_id"].value_counts())
            keep = ((uc >= cfg.min_user_ratings) & (mc >= cfg.min_movie_ratings)).to_numpy()
            if keep.all():
                break
            if k_core is not None:
                k_core.append(ratings.loc[~keep, pair_columns(ratings)])
            ratings = ratings[keep]
        report["k_core_dropped"] = n3 - len(ratings)
        report["k_core_rounds"] = rounds
    if len(ratings) == 0:
        raise DataError("no ratings left after cleaning; lower data.min_rating, data.min_user_ratings or "
                        "data.min_movie_ratings")
    return ratings.reset_index(drop=True)


def ingest(cfg: DataConfig, split_cfg: SplitConfig, output: str | Path | None = None, overwrite: bool = False,
           progress: bool = False, full_config: dict | None = None) -> dict:
    """Run the whole ingest and return the summary (also stored in the manifest)."""
    t0 = time.perf_counter()
    out = through_missing(Path(output or cfg.prepared))  # a '..' after a folder not there: out with it, as every
    # output's (a review: -o a/../x made 'a' with mkdir -p and left it)
    if split_cfg.last_k is not None and split_cfg.method != "user_time":  # a review: the split ignored it
        raise ConfigError(f"config key 'split.last_k' holds out each user's last k ratings, which only "
                          f"split.method=user_time does (it is {split_cfg.method}); add «--set split.method=user_time», "
                          "or leave split.last_k null")
    check_source(cfg)
    for _, path, key in given_files(cfg):  # (split.method=given's held-out files: read as data.source is)
        check_held_out_file(path, key)
    refuse_dangling(out)
    # the current folder (replaced whole, or filled in place), then an output inside a run or a dataset, or a link to
    # a folder inside one: said before the source is read
    refuse_cwd(out)
    refuse_inside_store_through(out)
    if out.exists() and not overwrite:
        check_replaceable(out, is_dataset)  # a folder --overwrite would refuse (a file, the user's own) says so now
        raise OutputExists(f"output directory '{out}' already exists; pass «--overwrite|overwrite=True» to replace it, or "
                        "choose another with «--output|output=...»")
    if out.exists():
        check_replaceable(out, is_dataset)  # before reading the source: refuse early, not after minutes
        refuse_changed_flat(out, 0)  # sizes alone here; the publish compares checksums too
        refuse_foreign(out)  # one replaced whole: a user's files there said now (a second diff review: after the
        # whole source was read)
    fix = "choose another output folder (-o / data.prepared)"
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]  # deepest first
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise (io_error(e, out.parent, fix) or e) from None
    try:
        with target_lock(out, "embedrec ingest", fix):
            return _ingest(cfg, split_cfg, out, overwrite, progress, full_config, t0)
    except BaseException:  # a failed ingest leaves no empty data/prepared/ behind (the folders it made, if empty)
        remove_made(made)
        raise
    finally:  # the folders made and left, said as every output's are (a review: -o a/b/c made a/b without a word)
        if made and out.parent.is_dir():
            note_made(out)


def _ingest(cfg: DataConfig, split_cfg: SplitConfig, out: Path, overwrite: bool, progress: bool, full_config: dict | None,
            t0: float) -> dict:
    """Read the source, check, clean, split and index its ratings, and write the dataset to ``out`` (its lock held):
    the summary."""
    before = _stamps(cfg)  # each source file as it is before a byte is read, compared once it is hashed (_sha256)
    raw = read_given(read_source(cfg, progress), cfg, split_cfg, read_source, progress)  # (split.method=given)
    # the stages after the parse, named on one bar (none of them has a count of its own to show: each goes over
    # a whole column at once); a first-hour review: 5 of 8 s of a 1M-row click log without a word
    with stages(f"preparing {out}" if progress else None, STAGES, delay=bars.INGEST_DELAY_S) as begin:
        stage = begin or (lambda name: None)
        stage("checksums of the files read")
        inputs = _sha256(raw.files, before)  # hashed once read: a file changed meanwhile is refused before a line is said
        cfg = _repeats_rule(cfg, raw)
        stage(f"checking {len(raw.ratings):,} rows")
        scale_said: list[tuple] = []  # a scale read from the data that spans no usual one: said once the rows are read
        scale = check_ratings(raw, cfg, scale_said)  # first: a bad rating is the only line on stderr
        cfg, floor_note, two_values, report_pair, zeros = _rating_floor(cfg, raw)
        untimed, n_read = _say_read(raw, cfg, split_cfg, t0, floor_note, scale_said, zeros)
        report = _read_report(raw, cfg, split_cfg, n_read, untimed)
        movies_said = _movies_said(cfg)
        movies = _unique_movies(raw, report, movies_said)
        _unique_users(raw, report)
        stage(f"cleaning {len(raw.ratings):,} rows")
        ratings, below, k_core, events = _clean_read(raw, movies, cfg, split_cfg, report, movies_said, untimed)
        scale = _summed_scale(ratings, cfg, report, scale)
        report["after_cleaning"] = {"users": int(ratings["user_id"].nunique()),
                                    "movies": int(ratings["movie_id"].nunique()), "ratings": len(ratings)}
        raw.ratings = None  # only the cleaned rows are used from here: the rows read are freed if cleaning copied them
        gone_users: list[np.ndarray] = []
        cuts: list = []
        stage(f"splitting {len(ratings):,} ratings")
        ratings, assign, cold = assign_splits(ratings, split_cfg, report, gone_users, events, cfg.min_rating, below, cuts)
        say_ties(split_cfg, report.get("split_ties"))
        stage(f"indexing {len(ratings):,} ratings")
        frames, users, mtab = _tables(ratings, assign, raw.users, movies, cfg.keep_unrated_movies)
        del ratings
        extra = _seen_tables(raw, frames, users, mtab, below, k_core, cold, cuts, gone_users, cfg, split_cfg, report)
        if two_values:  # a warning (-q keeps it: the data may be read wrongly), once nothing is left to refuse it
            log.warning(*two_values)
        summary = _summarise(cfg, split_cfg, raw, movies, frames, users, mtab, scale, report, cold, gone_users)
        manifest = _manifest(summary, inputs, full_config, report_pair)
    _write(out, overwrite, progress, {**frames, **extra}, users, mtab, manifest, summary)
    summary["output"] = str(out)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary


def _repeats_rule(cfg: DataConfig, raw) -> DataConfig:
    """``cfg`` with data.repeats auto made the rule the rows read call for (sum for a log of events, else latest);
    event weights that float32 holds as 0, or (summed) that are not above 0, refused."""
    if cfg.repeats == "auto":  # a table without ratings is a log of events, a pair's rows its count (as implicit
        # takes a click log); one with ratings keeps each pair's latest (a first-hour review: 21% of a click log's
        # rows dropped as repeated pairs by default)
        # a column of event types weighed (data.event_weights) is a log too: a pair's weights summed, as implicit's
        # users sum a shop log's event weights into a confidence
        cfg = dataclasses.replace(cfg, repeats="sum" if raw.no_ratings or raw.weighted else "latest")
    # (a weight above 0 that float32, the ratings' type, makes 0 counts as 0: a review's 1e-50 summed to 0s; and
    # is refused whatever data.repeats is: kept latest, its 0s were taken for dislikes)
    vanishing = [k for k, w in (cfg.event_weights or {}).items() if w > 0 and np.float32(w) == 0] if raw.weighted \
        else []
    if vanishing:
        w = cfg.event_weights[vanishing[0]]
        raise ConfigError(f"config key 'data.event_weights': {vanishing[0][:40]!r} weighs {w:g}, which the ratings' "
                          "float32 holds as 0; give it a weight of at least 1e-38 (or 0, where it is a dislike under "
                          "«--set data.repeats=latest|data.repeats='latest'»)")
    if raw.weighted and cfg.repeats == "sum" and any(w <= 0 for w in cfg.event_weights.values()):
        low = next(k for k, w in cfg.event_weights.items() if w <= 0)
        raise ConfigError(f"config key 'data.event_weights': {low[:40]!r} weighs {cfg.event_weights[low]:g}, and a "
                          "summed log's pair counts its events' weights, so each must be above 0; give it a weight "
                          "above 0 (or remove those rows), or keep each pair's latest event with "
                          "«--set data.repeats=latest|data.repeats='latest'»")
    return cfg


def _rating_floor(cfg: DataConfig, raw) -> tuple[DataConfig, tuple | None, tuple | None, list | None, tuple | None]:
    """data.min_rating auto made the floor of the ratings read (likes and dislikes apart; none for counts): ``cfg``
    with it, and the lines to say of it: the floor's note, the warning of two values above 0 (and the pair, for the
    manifest), the note of a scale heaped at 0. Each None where not said (all of them unless data.min_rating is
    auto)."""
    floor_note = two_values = report_pair = zeros = None
    if cfg.min_rating == "auto":
        r = None if cfg.repeats == "sum" else raw.ratings["rating"].to_numpy(np.float64)  # (counts: left alone)
        floor = None if r is None else like_floor(r)
        cfg = dataclasses.replace(cfg, min_rating=floor)
        floor_note = None if floor is None else (
            "note: the ratings are likes and dislikes (%s), so the dislikes (below %g) are kept apart: never "
            "recommended back, not learnt as likes (data.min_rating: auto); an explicit model needs them: ingest with "
            "«--set data.min_rating=null|data.min_rating=None» for one", scale_values(raw), floor)
        # two values above 0 (a thumbs file coded 1/2, a view 1 and a purchase 2): not guessed, said (a review: a 1/2
        # thumbs file was learnt as all likes without a word, test NDCG@10 0.116 against 0.306 with the 1s apart)
        # (not on a scale given, the layout's or data.rating_scale: its ratings, 3.5 and 4 stars)
        given = raw.rating_scale is not None or cfg.rating_scale is not None
        # (nor on weights data.event_weights gives: a view 1 and a purchase 2 are the user's own; a review)
        pair = None if r is None or floor is not None or given or raw.weighted else two_positive_values(r)
        two_values = None if pair is None else two_values_warning(r, *pair)
        # a scale heaped at 0, which may mean 'seen, not rated' (Book-Crossing's 60%; a first-hour review: not
        # noticed): said, where nothing else set its floor (not of counts, events weighed or rows without ratings)
        zeros = None if r is None or floor is not None or raw.weighted or raw.no_ratings else zeros_note(raw, r)
        del r
        if pair is not None:  # in the manifest: train and tune-dims say it again (a review: only ingest did)
            report_pair = [pair[0], pair[1]]
    return cfg, floor_note, two_values, report_pair, zeros


def _say_read(raw, cfg: DataConfig, split_cfg: SplitConfig, t0: float, floor_note: tuple | None,
              scale_said: list[tuple], zeros: tuple | None) -> tuple[int, int]:
    """What was read, said once its rows passed the checks: the reading's notes, the rows kept without a time
    (_untimed_rows) and those data.missing=drop dropped, the rows read, then the notes of the ratings' floor and
    scale. The count of the rows without a time, and of the rows read."""
    for note in raw.notes:  # how the files were read, once their rows passed the checks (some warned of)
        (log.warning if isinstance(note, WarnedNote) else log.info)(note)
    untimed = _untimed_rows(raw, split_cfg)  # data.missing=drop's rows whose time alone is empty: kept or dropped
    if raw.missing_dropped:  # data.missing=drop
        n, named = raw.missing_dropped, len(raw.seen.get("missing_values", ()))
        # (a row naming a user and a movie says the user met it: kept as seen, RawData.seen; a first-hour review)
        pairs = "" if not named else "; its (user, movie) pair" if n == 1 else \
            f"; the (user, movie) pair{'' if named == 1 else 's'} of the {named:,} naming both"
        log.warning("%s%s", missing_dropped_said(raw.origin[0] if not raw.parts else
                                                 " and ".join(dict.fromkeys(p for p, _ in raw.parts)), n),
                    f"{pairs} kept as seen (never recommended back), not trained on" if named else "")
    from embedrec.data.textfiles import NAMED

    framed = NAMED.get(str(cfg.source)) == "the DataFrame"  # er.ingest(df): read from its cache file, said as itself
    n_read = len(raw.ratings) + raw.missing_dropped + raw.scale_dropped
    n_dropped = raw.missing_dropped + raw.scale_dropped
    log.info("read %s row%s (%s%s) in %.1fs", f"{n_read:,}", "" if n_read == 1 else "s",
             "a pandas DataFrame" if framed else f"{raw.layout} layout",
             f"; {n_dropped:,} dropped" if n_dropped else "", time.perf_counter() - t0)
    if floor_note:  # after what was read (a review: it came first)
        log.info(*floor_note)
    for note in scale_said:  # (a first-hour review: a file of ratings 3-5 got the scale 3-5 without a word)
        log.info(*note)
    if zeros:
        log.info(*zeros)
    return untimed, n_read


def _read_report(raw, cfg: DataConfig, split_cfg: SplitConfig, n_read: int, untimed: int) -> dict:
    """The report's counts of the reading: the rows read, and those dropped or skipped where a setting asks for it."""
    report: dict = {"rows_read": n_read}
    if cfg.missing == "drop":  # counted, 0 too, where asked for
        report["missing_values_dropped"] = raw.missing_dropped
        if untimed:  # (of them, or kept: those whose time alone was empty)
            report[f"missing_times_{'dropped' if split_cfg.method in TIME_METHODS else 'kept'}"] = untimed
    if cfg.out_of_scale == "drop":
        report["out_of_scale_dropped"] = raw.scale_dropped
    if cfg.bad_lines == "skip":  # counted, 0 too, where asked for (the lines: the reading's note)
        report["bad_lines_skipped"] = raw.bad_lines_skipped
        report["bad_values_skipped"] = raw.bad_values_skipped
    return report


def _movies_said(cfg: DataConfig) -> str:
    """The movies file as a warning names it: a DataFrame given as data.movies as itself, else 'the movies file'."""
    from embedrec.data.textfiles import NAMED

    return NAMED.get(str(cfg.movies), "the movies file") if cfg.movies else "the movies file"  # movies=df's


def _unique_movies(raw, report: dict, movies_said: str) -> pd.DataFrame | None:
    """The movies read, the first row of each id kept (the later ones counted and said)."""
    movies = raw.movies.drop_duplicates("movie_id", keep="first") if raw.movies is not None else None
    if movies is not None and len(movies) < len(raw.movies):  # a review: dropped without a word
        report["movies_file_repeated_ids_dropped"] = len(raw.movies) - len(movies)
        n = len(raw.movies) - len(movies)
        log.warning("%s repeats movie ids: %s later %s dropped, the first row of each id kept", movies_said,
                    f"{n:,}", "row" if n == 1 else "rows")
    return movies


def _unique_users(raw, report: dict) -> None:
    """The users file's rows (``raw.users``), the first row of each id kept (the later ones counted and said)."""
    if raw.users is not None and raw.users["user_id"].duplicated().any():  # as the movies (a red team: silent)
        kept = raw.users.drop_duplicates("user_id", keep="first")
        report["users_file_repeated_ids_dropped"] = len(raw.users) - len(kept)
        n = len(raw.users) - len(kept)
        log.warning("the users file repeats user ids: %s later %s dropped, the first row of each id kept",
                    f"{n:,}", "row" if n == 1 else "rows")
        raw.users = kept


def _clean_read(raw, movies: pd.DataFrame | None, cfg: DataConfig, split_cfg: SplitConfig, report: dict,
                movies_said: str, untimed: int) -> tuple[pd.DataFrame, list, list, list]:
    """The ratings read matched to the movies and :func:`clean`ed, a random split's rows without a time placed in
    their users' histories: the cleaned rows, the rows below data.min_rating and those the k-core filter dropped
    (each a list of at most one frame), and the events of the summed pairs a time split reads."""
    below: list[pd.DataFrame] = []
    k_core: list[pd.DataFrame] = []
    # each summed pair's first time and its events only where a time split reads them (an int64 a pair, 800 MB at
    # 100M pairs; 12 bytes an event of a repeated pair, the events read being freed before the split)
    timed = split_cfg.method in TIME_METHODS
    events: list[PairEvents] = []
    ratings = clean(_match_movies(raw.ratings, movies, cfg, report, movies_said), cfg, report, below, k_core,
                    first_time=timed, events=events if timed else None)
    if untimed and not timed:  # each kept row without a time placed in its user's history (after the repeats'
        # rule, which took a pair's timed row over an untimed one)
        ratings = _place_untimed(ratings)
    return ratings, below, k_core, events


def _summed_scale(ratings: pd.DataFrame, cfg: DataConfig, report: dict, scale: tuple) -> tuple:
    """The dataset's rating scale: the rows', widened to the sums of data.repeats=sum (said where data.rating_scale
    gave the rows')."""
    if cfg.repeats == "sum" and report.get("repeated_pairs_summed") and len(ratings):
        r = ratings["rating"].to_numpy()  # sums beyond the rows' scale: the explicit clip and RMSE's take them
        wide = (min(scale[0], float(r.min())), max(scale[1], float(r.max())))
        if cfg.rating_scale is not None and wide != scale:  # a review: a given 1-3 clipped sums up to 26
            log.warning("data.rating_scale [%g, %g] is the rows' scale; data.repeats=sum sums them up to %g, so the "
                        "dataset's scale is [%g, %g]", scale[0], scale[1], wide[1], wide[0], wide[1])
        scale = wide
    return scale


def _seen_tables(raw, frames: dict, users: pd.DataFrame, mtab: pd.DataFrame, below: list, k_core: list, cold,
                 cuts: list, gone_users: list, cfg: DataConfig, split_cfg: SplitConfig, report: dict) -> dict:
    """The tables of pairs seen but not trained on: rated_below (the rows below data.min_rating, those the k-core
    filter dropped of a movie kept, those the reading dropped; split as the ratings are) and rated_below_unknown
    (those of users not in the dataset); the count of the users left out."""
    extra = {}
    uids, mids = users["user_id"].to_numpy(), mtab["movie_id"].to_numpy()
    if below:
        extra["rated_below"] = rated_below(below[0], uids, mids)
        report["below_min_rating_kept_as_seen"] = len(extra["rated_below"])
    # a movie the k-core filter dropped, back in the catalogue (data.keep_unrated_movies): the users who rated it
    # and stay are never offered it either
    if k_core and cfg.keep_unrated_movies:
        core = rated_below(pd.concat(k_core, ignore_index=True), uids, mids)
        if len(core):
            extra["rated_below"] = pd.concat([extra.get("rated_below"), core], ignore_index=True)
            report["k_core_kept_as_seen"] = len(core)
    seen = _kept_as_seen(raw.seen, frames, extra.get("rated_below"), uids, mids, report)
    if seen is not None:
        extra["rated_below"] = pd.concat([extra.get("rated_below"), seen], ignore_index=True)
    if "rated_below" in extra:
        extra["rated_below"] = split_below(extra["rated_below"], split_cfg, cuts[0] if cuts else None, cold, uids,
                                           mids, report)
    # users the cleaning left out (every rating below data.min_rating, or dropped by the k-core filter): not in
    # the dataset, and the popular fallback still never offers them a movie they rated
    dropped = below[:1] + k_core + list(raw.seen.values())
    absent = rated_below_unknown(pd.concat(dropped, ignore_index=True), uids, mids) if dropped else None
    if absent is not None and len(absent):
        extra["rated_below_unknown"] = absent
    if dropped or gone_users:  # always said, 0 too: a dataset without the count was made before they were kept
        # (train warns); every user of the cleaned rows with none left, and those the cleaning dropped
        ids = set(absent["user_id"].tolist()) if absent is not None else set()
        for g in gone_users:
            ids.update(g.tolist())
        report["users_left_out"] = len(ids)
    return extra


def _summarise(cfg: DataConfig, split_cfg: SplitConfig, raw, movies, frames: dict, users: pd.DataFrame,
               mtab: pd.DataFrame, scale: tuple, report: dict, cold, gone_users: list) -> dict:
    """The dataset's summary (data/summary.py), and its warnings of a split left empty or shrunk."""
    summary = summarise(cfg, split_cfg, raw, movies, frames, users, mtab, scale, report, cold)
    warn_empty_splits(split_cfg, summary["split"], report.get("eval_rows_dropped_unknown", 0),
                      report.get("users_given_a_train_row", 0), report.get("given_rows"))
    warn_shrunk_splits(split_cfg, summary["split"], report.get("eval_rows_dropped_unknown", 0),
                       sum(g.size for g in gone_users))
    return summary


def _manifest(summary: dict, inputs: dict, full_config: dict | None, report_pair: list | None) -> dict:
    """The dataset's manifest: the versions, the summary, the inputs' checksums, the config, the time."""
    return {
        "format_version": FORMAT_VERSION,
        "embedrec_version": __version__,
        **summary,
        "inputs": inputs,
        "config": full_config,
        # data.min_rating: auto's two values above 0 it learnt both as likes (config_ingest.two_values_train_warning)
        **({"two_positive_values": report_pair} if report_pair else {}),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),  # RFC 3339 (jq fromdate: a review)
    }


def _write(out: Path, overwrite: bool, progress: bool, tables: dict, users: pd.DataFrame, mtab: pd.DataFrame,
           manifest: dict, summary: dict) -> None:
    """The dataset written to ``out`` as a new generation, made current atomically (its rows counted on a bar), and
    a dataset it replaced with more in it said."""
    # a new generation, made current atomically; readers of the previous one keep it until they let go
    replaced = replaced_counts(out) if overwrite and out.exists() else None  # (its figures, for the warning below)
    with step(f"writing {out}" if progress else None, dataset_rows(tables, users, mtab), "row", scale=True,
              delay=bars.INGEST_DELAY_S) as tick:  # (rows counted a row group at a time)
        publish_dataset(out, lambda tmp: write_dataset(tmp, tables, users, mtab, manifest, tick=tick),
                        overwrite=overwrite, command="embedrec ingest",
                        fix="choose another output folder (-o / data.prepared)")
    shrunk = shrunk_said(out, replaced, summary.get("counts") or {}, manifest.get("config"))
    if shrunk:
        log.warning("%s", shrunk)




def _kept_as_seen(seen: dict[str, pd.DataFrame], frames: dict, below: pd.DataFrame | None, uids: np.ndarray,
                  mids: np.ndarray, report: dict) -> pd.DataFrame | None:
    """The pairs of the rows dropped for a missing value or a rating off the scale (``seen``, RawData.seen, by
    why) that name a user and a movie of the dataset, kept as seen as data.min_rating's are (rated_below: never
    recommended back, not trained on, listed by history as rated_below), each counted in
    ``report[f"{why}_kept_as_seen"]``; None where none is. A first-hour review: `u1,tt0000423,,881250949`, a
    row without a rating dropped by data.missing=drop, came back first in u1's list, though the row says u1 met
    the movie. A pair the dataset holds already (a rating of it kept: a split's row, or one kept apart below) is
    left out, so that no pair is twice.

    Such a row's time is not read (it may be the value missing), so a time split puts its pair in train
    (NO_TIME, before every cut): evaluation on a held-out part leaves the movie out, as one seen before it."""
    if not seen:
        return None
    width = np.int64(max(mids.size, 1))
    held = [f[["user_idx", "movie_idx"]] for f in frames.values()] + ([below] if below is not None else [])
    have = np.concatenate([f["user_idx"].to_numpy(np.int64) * width + f["movie_idx"].to_numpy(np.int64)
                           for f in held])
    out = []
    for why, pairs in seen.items():
        found = rated_below(pairs[["user_id", "movie_id"]], uids, mids)
        key = found["user_idx"].to_numpy(np.int64) * width + found["movie_idx"].to_numpy(np.int64)
        fresh = first_new_pairs(key, have)  # (a pair of several such rows: once)
        found = found[fresh].reset_index(drop=True)
        have = np.concatenate([have, key[fresh]])
        report[f"{why}_kept_as_seen"] = len(found)
        out.append(found)
    kept = pd.concat(out, ignore_index=True)
    if "timestamp" in frames["train"]:  # as the pairs kept apart below carry theirs (pair_columns)
        kept["timestamp"] = NO_TIME
    return kept if len(kept) else None


def _untimed_rows(raw, split_cfg: SplitConfig) -> int:
    """The rows data.missing=drop kept whose time alone is empty (their timestamp NO_TIME: data/tables.py), said
    in one warning with their count and the first one's file:line; returns how many. A random split holds no
    rating out by its time, so they stay, their ratings trained on (:func:`_place_untimed` gives each its user's
    middle time once the repeats are settled; a file where no row has a time is read without times). A time split
    (split.method user_time or global_time) cannot place them: they are dropped as the rows missing a value are
    (counted in ``raw.missing_dropped``; their pairs kept as seen, as those rows' are, in train), and a file where
    every row lacks its time is refused."""
    if "timestamp" not in raw.ratings:
        return 0
    t = raw.ratings["timestamp"].to_numpy()
    untimed = t == NO_TIME
    n = int(untimed.sum())
    if not n:
        return 0
    first = raw.where(int(np.flatnonzero(untimed)[0]), cheap=True)
    rows = f"{n:,} row{'' if n == 1 else 's'} with a user, a movie and a rating but no time (the first at {first})"
    label = raw.origin[0] if not raw.parts else " and ".join(dict.fromkeys(p for p, _ in raw.parts))  # (a given
    # split's files: the first row's may be the held-out one's; a diff review)
    if split_cfg.method in TIME_METHODS:
        if n == t.size:
            raise DataError(f"{label}: no row has a time (each has a user, a movie and a rating; the first at "
                            f"{first}), and split.method={split_cfg.method} holds ratings out by their time; fill "
                            "the times in, or split at random («--set split.method=random|split.method='random'»)")
        pairs = raw.ratings.loc[untimed, ["user_id", "movie_id"]].reset_index(drop=True)
        held = raw.seen.get("missing_values")  # (kept as seen, as the other rows dropped: _kept_as_seen)
        raw.seen["missing_values"] = pairs if held is None else pd.concat([held, pairs], ignore_index=True)
        raw.kept = (np.arange(t.size) if raw.kept is None else raw.kept)[~untimed]
        raw.ratings = raw.ratings[~untimed].reset_index(drop=True)
        raw.missing_dropped += n
        log.warning("%s: %s: dropped with the rows missing a value, as split.method=%s holds ratings out by their "
                    "time; fill %s in, or split at random («--set split.method=random|split.method='random'») to "
                    "train on %s", label, rows, split_cfg.method, "its time" if n == 1 else "their times",
                    "it" if n == 1 else "them")
        return n
    if n == t.size:  # nothing to place them by: a dataset without times, as a file without the column
        raw.ratings = raw.ratings.drop(columns="timestamp")
        log.warning("%s: no row has a time (the first at %s): read without times, as data.columns.timestamp=null "
                    "reads a file", label, first)
        return n
    kept = "kept in its file's part" if split_cfg.method == "given" and n == 1 else \
        "kept in their files' parts" if split_cfg.method == "given" else \
        f"kept, {'its rating' if n == 1 else 'their ratings'} trained on"
    log.warning("%s: %s: %s (split.method=%s holds no rating out by its time), at %s "
                "user's middle time (the median of the user's timed ratings; of all of them for a user with none), "
                "which the recency weight, recent popularity and history read; fill %s in to place %s", label, rows,
                kept, split_cfg.method, "its" if n == 1 else "each one's",
                "its time" if n == 1 else "their times", "it" if n == 1 else "them")
    return n


def _place_untimed(ratings: pd.DataFrame) -> pd.DataFrame:
    """``ratings`` with each row without a time (NO_TIME: :func:`_untimed_rows`) at its user's middle time: the
    median (rounded down) of the user's timed rows, or of every timed row where the user has none. A recency weight
    then weighs its rating as the middle of the user's history, as a new user's fold-in weighs a rating told
    without a time (serve.foldin.untimed_weight)."""
    if "timestamp" not in ratings:
        return ratings
    t = ratings["timestamp"].to_numpy()
    untimed = t == NO_TIME
    if not untimed.any():
        return ratings
    timed = ~untimed
    if not timed.any():  # (a pair's rows all untimed are still one; no row left with a time: none to place by)
        return ratings.drop(columns="timestamp")
    users = ratings["user_id"].to_numpy()
    middle = pd.Series(t[timed]).groupby(users[timed]).median()
    fill = pd.Series(users[untimed]).map(middle).fillna(float(np.median(t[timed]))).to_numpy()
    t = t.copy()
    t[untimed] = np.floor(fill).astype(np.int64)
    ratings = ratings.copy()
    ratings["timestamp"] = t
    return ratings


def _match_movies(ratings: pd.DataFrame, movies: pd.DataFrame | None, cfg: DataConfig, report: dict,
                  said: str = "the movies file") -> pd.DataFrame:
    """Ratings of movies absent from the movies file: kept untitled, or dropped (data.unknown_movies). ``said``:
    the movies as the warnings name them ('the movies DataFrame' of er.ingest(movies=df)). Where the absent ids
    are the movies file's written another way ('0040' there, 40 in the ratings: :func:`data.ids.written_apart`),
    that is said with an example pair and how to write them, and dropping them is not advised."""
    if movies is None:
        return ratings
    unknown = ~ratings["movie_id"].isin(movies["movie_id"])
    n_unknown = int(unknown.sum())
    report["ratings_for_unknown_movies"] = n_unknown
    apart = _written_apart(ratings["movie_id"][unknown.to_numpy()], movies["movie_id"], cfg) if n_unknown else None
    # none known (a red team: kept untitled with a warning, then "ingested without a movies file" at recommend)
    if n_unknown and n_unknown == len(ratings) and len(movies):
        from embedrec.data.ids import py_id

        a, b = (sorted(x.drop_duplicates().head(1000).tolist(), key=str)[:3] for x in (ratings["movie_id"],
                                                                                        movies["movie_id"]))
        ids = (f"(the ratings' movie ids {', '.join(repr(py_id(x)) for x in a)}, ...; the movies file's "
               f"{', '.join(repr(py_id(x)) for x in b)}, ...)")
        if not cfg.movies:  # a release's own movies file (a red team: "the movies file 'None'")
            raise DataError(f"no movie of the ratings is in the release's own movies file {ids}: its files are "
                            "not of one release; unzip or download it again")
        if apart is not None:  # every one there, written otherwise
            raise DataError(f"no movie of the ratings is in the movies file '{cfg.movies}' as its ids are written "
                            f"{ids}: the ratings {apart[1]}; {apart[2]}")
        raise DataError(f"no movie of the ratings is in the movies file '{cfg.movies}' {ids}: the two files must "
                        "use the same ids; check data.movies and its id column (data.columns.movie)")
    if n_unknown and apart is not None:  # dropping them would lose ratings of movies the file has (a review)
        rest = n_unknown - apart[0]
        if cfg.unknown_movies == "drop":
            ratings = ratings[~unknown.to_numpy()]
        log.warning("%s absent from %s as its ids are written: %s of them %s; %s; %s", _for_movies(n_unknown), said,
                    ("it" if n_unknown == 1 else "all") if not rest else f"{apart[0]:,}", apart[1], apart[2],
                    ("dropped" if cfg.unknown_movies == "drop" else "kept (untitled) meanwhile") +
                    (f", with the other {rest:,}, of movies it does not have" if rest else ""))
    elif n_unknown:
        if cfg.unknown_movies == "drop":
            ratings = ratings[~unknown.to_numpy()]
            log.warning("dropped %s rating%s for %s absent from %s", f"{n_unknown:,}", "" if n_unknown == 1 else "s",
                        "a movie" if n_unknown == 1 else "movies", said)
        else:
            log.warning("%s absent from %s; kept (untitled). Set data.unknown_movies=drop to drop %s",
                        _for_movies(n_unknown), said, "it" if n_unknown == 1 else "them")
    return ratings


def _for_movies(n: int) -> str:
    """'1 rating is for a movie', '2 ratings are for movies' (a first-hour review: '1 ratings are for movies')."""
    return "1 rating is for a movie" if n == 1 else f"{n:,} ratings are for movies"


def _written_apart(absent: pd.Series, known: pd.Series, cfg: DataConfig) -> tuple[int, str, str] | None:
    """(how many of the ``absent`` ratings' movie ids are ids of the movies file written another way, what they
    are, how to join them) or None where none is: ids join only as written under every data.id_type (int refuses
    '0040', auto and str keep it as text), so the fix is to write the two files' ids alike."""
    from embedrec.data.ids import written_apart

    distinct = pd.unique(absent)
    hits, first = written_apart(distinct, known.to_numpy())
    if first is None:
        return None
    n = int(absent.isin(distinct[hits]).sum())
    name, theirs, ours = _movies_name(cfg), _shown_id(first[1]), _shown_id(first[0])
    n_ids = int(hits.sum())
    what = (f"name {'its movies' if n_ids > 1 else 'its movie'} with {'their ids' if n_ids > 1 else 'its id'} written "
            f"another way ({theirs} in {name} is {ours} in the ratings{'' if n_ids == 1 else f'; {n_ids:,} movies so'})")
    return n, what, (f"ids join only as written (no data.id_type joins {theirs} and {ours}), so write {name}'s ids "
                     f"as the ratings write them ({ours} for {theirs}) and ingest again")


def _shown_id(v) -> str:
    """An id as a message shows it: an integer written plainly as itself, anything else in quotes ('0040')."""
    import re

    return str(v) if re.fullmatch(r"-?(?:0|[1-9][0-9]*)", str(v)) else repr(str(v))


def _movies_name(cfg: DataConfig) -> str:
    """The movies file as a message names it: its path as given, or 'the movies DataFrame' (er.ingest(movies=df))."""
    from embedrec.data.textfiles import NAMED

    return NAMED.get(str(cfg.movies), str(cfg.movies)) if cfg.movies else "the release's movies file"


def _tables(ratings: pd.DataFrame, assign: np.ndarray, raw_users: pd.DataFrame | None,
            movies: pd.DataFrame | None, keep_unrated: bool):
    """Contiguous indices in order of external id: (the three split frames, users, movies)."""
    uids = np.sort(ratings["user_id"].unique())
    mids = np.sort(ratings["movie_id"].unique())
    if keep_unrated and movies is not None:
        mids = np.sort(pd.unique(np.concatenate([mids, movies["movie_id"].to_numpy()])))
    # each split's columns are cut from one column at a time: the peak holds the splits and one column, not a
    # whole table beside its three copies (ingest of 10M ratings: 1,185 MB peak before)
    # each split's rows found once, then taken from each column (a boolean mask applied again to every column was
    # 0.8 s of 5M rows, the rows taken 0.2 s)
    rows = {name: np.flatnonzero(assign == code) for name, code in (("train", TRAIN), ("valid", VALID), ("test", TEST))}
    parts: dict[str, dict] = {name: {} for name in rows}
    columns = {"user_idx": lambda: index_of(uids, ratings["user_id"].to_numpy()),
               "movie_idx": lambda: index_of(mids, ratings["movie_id"].to_numpy()),
               "rating": lambda: ratings["rating"].to_numpy(np.float32)}
    if "timestamp" in ratings:
        columns["timestamp"] = lambda: ratings["timestamp"].to_numpy(np.int64)
    for col, make in columns.items():
        values = make()
        for name, taken in rows.items():
            parts[name][col] = values.take(taken)
        del values
    frames = {name: pd.DataFrame(cols, copy=False) for name, cols in parts.items()}
    del parts
    users = pd.DataFrame({"user_idx": np.arange(uids.size, dtype=np.int32), "user_id": uids})
    if raw_users is not None:
        users = users.merge(raw_users.drop_duplicates("user_id"), on="user_id", how="left")
    mtab = pd.DataFrame({"movie_idx": np.arange(mids.size, dtype=np.int32), "movie_id": mids})
    if movies is not None:
        mtab = mtab.merge(movies, on="movie_id", how="left")
        mtab["genres"] = [g if isinstance(g, list) else [] for g in mtab["genres"]]
        mtab["title"] = mtab["title"].fillna("")
    else:
        mtab["title"] = ""
        mtab["year"] = pd.array([None] * len(mtab), dtype="Int32")
        mtab["genres"] = [[] for _ in range(len(mtab))]
    mtab["n_ratings"] = np.bincount(frames["train"]["movie_idx"], minlength=mids.size).astype(np.int64)
    return frames, users, mtab


def index_of(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each of ``values``' place in ``ids`` (sorted, holding every one of them) as int32: what
    ``np.searchsorted(ids, values)`` answers, found without a binary search per row (1.9 s of 5M rows against a
    sorted 100,000; a search misses the cache at every row): through a table over the ids' range where they are
    integers within one little wider than the rows (0.07 s), else by the place of each distinct value, the rows
    matched to their value by pandas' hash (``pd.factorize``: 0.3 s of integers, 3.4 s of text against 9 s)."""
    if ids.size and ids.dtype.kind == "i" and values.dtype.kind == "i":
        lo, span = int(ids[0]), int(ids[-1]) - int(ids[0]) + 1
        if span <= values.size + (1 << 20):  # (the table: at most 4 bytes a row more than the column)
            table = np.zeros(span, dtype=np.int32)
            table[ids - lo] = np.arange(ids.size, dtype=np.int32)
            return table[values - lo]
    codes, distinct = pd.factorize(values)
    return np.searchsorted(ids, distinct).astype(np.int32)[codes]
