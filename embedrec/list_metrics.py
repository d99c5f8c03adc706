"""Top-K lists scored against held-out ratings, ids in: any recommender's lists (embedrec's ``to_frame()`` or
``export --topk-all`` file, implicit's, LensKit's) on any split the caller made, by the metrics ``evaluate``
reports (``embedrec.metrics``), so peers are compared on the same rows by the same code (LensKit's
RecListAnalysis, Surprise's accuracy module). ``er.score_lists``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from embedrec.errors import DataError, UsageError, first_line, shorten
from embedrec.metrics import auc_at_k, hit_matrix, per_user_values
from embedrec.sparse import below_in, seen_splits, unique

if TYPE_CHECKING:  # annotations only: no import at run time
    import pandas as pd

log = logging.getLogger("embedrec")


@overload
def score_lists(lists, truth, ks=..., *, per_user: Literal[False] = ..., catalogue=...) -> dict[str, Any]: ...
@overload
def score_lists(lists, truth, ks=..., *, per_user: Literal[True], catalogue=...) -> pd.DataFrame: ...


def score_lists(lists, truth, ks=(10, 20), *, per_user: bool = False, catalogue=None) -> dict[str, Any] | pd.DataFrame:
    """Score ``lists`` (a DataFrame: user_id, movie_id, and rank 1, 2, ... or a score, higher first; else each
    user's rows in their order; or embedrec's ``Recommendations``) against ``truth`` (user_id, movie_id: the relevant movies, e.g. a test split).
    The id columns may have the names ``evaluate --lists`` takes: user/userId/uid, item/item_id/itemId/movie/movieId/
    iid (LensKit's user,item,rank), one column each.

    Every user of ``truth`` is scored, one without a list as a list of no hits (``users_without_list`` counts
    them); users with a list but nothing in ``truth`` are not (``users_not_in_truth``). Returns
    ``{"users_evaluated": n, ..., "ndcg@10": mean, ...}`` (``evaluate``'s names and order) for precision, recall, ndcg, map, hitrate and mrr at each k, and auc@k and
    coverage@k where ``catalogue`` (the number of movies) is given; ``per_user=True``: a DataFrame, a row per user of
    ``truth`` (user_id, n_relevant, the metrics). Ids are matched as given (196 is not '196': lists whose users
    or movies are none of ``truth``'s, their ids of another kind, are a UsageError). UsageError for a
    missing column, a missing id, a movie listed twice for one user, a rank below 1 or given twice for one user,
    or a score that is not a number (only the ranks' order counts: 1, 2, 5 is 1, 2, 3)."""
    return _score(lists, truth, ks, per_user=per_user, catalogue=catalogue)


def _score(lists, truth, ks, *, per_user: bool, catalogue, where: str | None = "score_lists", known=None):
    """:func:`score_lists`; ``where``: what the warning of lists shorter than the largest k names (a caller's
    «CLI|library» words), None for no warning (a second scoring of the same lists); ``known``: the catalogue's
    movie ids, where coverage counts those alone (an id the dataset does not have is a miss, not in coverage: an
    evaluation review's one unknown id made lists covering the catalogue refused)."""
    import pandas as pd

    from embedrec.evaluate import check_ks

    ks = check_ks(ks)
    if type(lists).__name__ != "DataFrame" and callable(getattr(lists, "to_frame", None)):
        lists = lists.to_frame()  # embedrec's Recommendations (a review: refused, with no word of to_frame)
    if type(truth).__name__ != "DataFrame" and callable(getattr(truth, "to_frame", None)):
        truth = truth.to_frame()
    given = {"lists": list(lists.columns) if type(lists).__name__ == "DataFrame" else [],
             "truth": list(truth.columns) if type(truth).__name__ == "DataFrame" else []}
    lists, truth = _frame(lists, "lists", ("user_id", "movie_id")), _frame(truth, "truth", ("user_id", "movie_id"))
    # each id column as the caller named it ('user' of LensKit's user,item,rank), which a fix names
    named = {k: dict(zip(f.columns, given[k])) if len(given[k]) == len(f.columns) else {}
             for k, f in (("lists", lists), ("truth", truth))}
    n_items = None if catalogue is None else _catalogue_size(catalogue)
    lists = _ordered(lists)
    truth = truth[["user_id", "movie_id"]].drop_duplicates()
    user_codes, users = pd.factorize(truth["user_id"])
    movie_codes, movie_uniques = pd.factorize(pd.concat([lists["movie_id"], truth["movie_id"]], ignore_index=True))
    list_movies, truth_movies = movie_codes[:len(lists)], movie_codes[len(lists):]
    # the truth as CSR over its users (hit_matrix's form)
    order = np.argsort(user_codes, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(user_codes, minlength=len(users)))]).astype(np.int64)
    indices = truth_movies[order].astype(np.int64)
    n_rel = np.diff(indptr)
    # the lists as a (users with a list) x K matrix of movie codes (-1: no movie at that rank): a user of truth
    # without a list has no hits, so no row (a red team: 20,000 such users x a 5,000-long list took 3.9 GB)
    longest = int(lists["_rank"].max()) + 1 if len(lists) else 1  # no wider than the longest list (a review:
    k_max = max(1, min(max(ks), longest))  # ks=(10, 2000) over 10-long lists took 1.6 GB); metrics take fewer columns
    row = pd.Index(users).get_indexer(lists["user_id"])  # -1: a user with a list but nothing relevant
    rank = lists["_rank"].to_numpy()
    has = unique(row[row >= 0])  # the users of truth with a list
    if len(lists) and len(truth) and not has.size:  # a review: lists read with dtype=str scored 0 in silence
        raise UsageError(f"score_lists: none of the lists' {lists['user_id'].nunique():,} users is a user of truth "
                         f"(ids are matched as given){_kinds('user_id', lists, truth, named)}")
    if has.size and not np.isin(list_movies, truth_movies).any() and _kinds("movie_id", lists, truth, named):
        raise UsageError(f"score_lists: no movie of the lists is a movie of truth"
                         f"{_kinds('movie_id', lists, truth, named)}")
    if max(ks) > longest and len(lists) and where:  # a review: 10-long lists at k=20 were scored down in silence
        log.warning(f"{where}: the longest list holds {longest} movies; at k={max(ks)} a list counts as that long, "
                    f"its missing places as misses (score at k <= {longest}, or give longer lists)")  # (no args: the
        # TermsFilter renders the marks of a message's own text)
    slot = np.full(len(users), -1, np.int64)
    slot[has] = np.arange(has.size)
    topk = np.full((has.size, k_max), -1, np.int64)
    keep = (row >= 0) & (rank < k_max)
    topk[slot[row[keep]], rank[keep]] = list_movies[keep]
    lengths = n_rel[has]
    sub_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    sub_idx = indices[np.repeat(indptr[has] - sub_ptr[:-1], lengths) + np.arange(int(sub_ptr[-1]))]
    hits = hit_matrix(topk, sub_ptr, sub_idx) if has.size else np.zeros((0, k_max))
    values = {}
    # a k beyond the catalogue ranks the whole catalogue and keeps its name, as evaluate's model row does
    # (evaluate.norm_ks; a review: the lists at k 2000 of 1,650 movies scored auc 1.16 and another precision)
    at = {k: min(k, max(n_items, 1)) if n_items is not None else k for k in ks}
    got = per_user_values(hits, lengths, sorted(set(at.values())), n_items)
    none = np.setdiff1d(np.arange(len(users)), has)  # users of truth without a list: an empty list each, whose
    # empty places are misses (an evaluation review: auc 0 where the definition gives max(N - K, 0) / 2N), every
    # other metric 0: auc of no columns (its places past the hits' width are misses), no users x K matrix (a red
    # team's 20,000 such users x a 5,000-long list took 3.9 GB; a diff review found it made again here)
    for name in dict.fromkeys(key.rsplit("@", 1)[0] for key in got):  # evaluate's order: each metric at every k
        for k in ks:
            v = np.zeros(len(users))
            v[has] = got[f"{name}@{at[k]}"]
            if none.size and name == "auc" and n_items is not None:
                v[none] = auc_at_k(np.zeros((none.size, 0)), n_rel[none], at[k], n_items)
            values[f"{name}@{k}"] = v
    if per_user:
        return pd.DataFrame({"user_id": np.asarray(users), "n_relevant": n_rel, **values})
    out = {"users_evaluated": int(len(users)), "users_without_list": int(len(users) - has.size),
           "users_not_in_truth": int(lists.loc[row < 0, "user_id"].nunique())}
    out.update({name: float(v.mean()) if len(v) else float("nan") for name, v in values.items()})
    in_catalogue = None if known is None else pd.Index(movie_uniques).isin(known)
    for k in ks if n_items is not None else ():  # distinct movies in the scored users' top k, of the catalogue
        listed = unique(topk[:, :k][topk[:, :k] >= 0])
        shown = (listed if in_catalogue is None else listed[in_catalogue[listed]]).size
        if shown > n_items:
            raise UsageError(f"score_lists: catalogue={n_items:,}, but the lists' top {k} name {shown:,} distinct "
                             "movies; give the number of movies in the catalogue")
        out[f"coverage@{k}"] = shown / n_items
    return out


def _kinds(column: str, lists, truth, named: dict | None = None) -> str:
    """'; the lists' movie ids are texts ('50'), truth's integers (50): ...' where the two hold ids of other kinds
    (texts, integers, numbers), else ''. ``named``: {"lists": {our column: the caller's}} (the fix names the
    column as the caller's frame has it: 'user', not 'user_id'; a notebook review)."""
    from embedrec.data.ids import py_id

    def kind(values) -> str:
        import pandas as pd

        if pd.api.types.is_integer_dtype(values):
            return "integers"
        if pd.api.types.is_numeric_dtype(values):
            return "numbers"
        if values.map(type).eq(str).all():
            return "texts"
        if values.map(lambda x: isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))).all():
            return "integers"  # an object column of ints (a review: said 'mixed')
        return "mixed"

    a, b = kind(lists[column]), kind(truth[column])
    if a == b or {a, b} == {"integers", "numbers"}:
        return ""
    what = column.split("_")[0]
    own = ((named or {}).get("lists") or {}).get(column, column)
    eg = f"lists.astype({{{own!r}: {'str' if b == 'texts' else 'int'}}})"
    cli = f"write the file's {what} ids as {'texts' if b == 'texts' else 'integers'}, as the dataset's are"
    return (f"; the lists' {what} ids are {a} ({py_id(lists[column].iloc[0])!r}), truth's {b} "
            f"({py_id(truth[column].iloc[0])!r}): make them one kind, «{cli}|e.g. {eg}»")


def _frame(df, name: str, need: tuple[str, ...]):
    if type(df).__name__ != "DataFrame":
        raise UsageError(f"score_lists: {name} must be a pandas DataFrame ({', '.join(need)}), not "
                         f"{type(df).__name__}")
    if df.columns.nlevels > 1 or df.columns.duplicated().any():  # a review: a bare KeyError, InvalidIndexError
        raise UsageError(f"score_lists: {name} needs one column of each name (its columns: "
                         f"{shorten(', '.join(map(str, df.columns)), 80)})")
    given = list(df.columns)  # (named as the caller named them)
    df = _named_columns(df, None)  # 'user', 'item', 'userId' ... as read_lists takes them (LensKit's user,item,rank)
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise UsageError(f"score_lists: {name} has no column {', '.join(map(repr, missing))} (its columns: "
                         f"{shorten(', '.join(map(str, given)), 80)}); rename them, e.g. "
                         f"df.rename(columns={_renames(df.columns, missing)})")
    try:  # a dict or list as an id (a red team: a bare TypeError, unhashable)
        df[list(need)].duplicated()
    except TypeError as e:
        from embedrec.errors import first_line

        raise UsageError(f"score_lists: {name}'s ids must be numbers or texts ({first_line(e)})") from None
    if df[list(need)].isna().any().any():
        raise UsageError(f"score_lists: {name} has missing ids; drop those rows first (df.dropna(subset=..."
                         f"{list(need)}))")
    return df


def _ordered(lists):
    """The lists with ``_rank`` 0, 1, ... per user: from 'rank' (1-based, as embedrec writes it), else from
    'score' (higher first), else the rows' order."""
    import pandas as pd

    lists = lists[[c for c in ("user_id", "movie_id", "rank", "score") if c in lists.columns]].reset_index(drop=True)
    dup = lists.duplicated(["user_id", "movie_id"])
    if dup.any():
        at = int(np.flatnonzero(dup.to_numpy())[0])
        from embedrec.data.ids import py_id

        # (each id from its own column: a row of a frame with a float score reads its int ids as floats, a review)
        user, movie = py_id(lists["user_id"].iloc[at]), py_id(lists["movie_id"].iloc[at])
        raise UsageError(f"score_lists: user {user!r}'s list holds movie {movie!r} twice (row {at + 1}); a list "
                         "names each movie once (a user asked for twice gives two lists: recommend(ids) of ids "
                         "given once, e.g. test['user_id'].unique())")
    if "rank" in lists.columns:
        rank = pd.to_numeric(lists["rank"], errors="coerce")
        bad = (rank.isna() | (rank < 1) | (rank % 1 != 0) |
               lists.assign(rank=rank).duplicated(["user_id", "rank"])).to_numpy()
        if bad.any():  # (the first such row named: a first-hour review's 0-based ranks)
            at = int(np.flatnonzero(bad)[0])
            raise UsageError(f"score_lists: lists' 'rank' column holds a value that is not 1, 2, ... or one rank "
                             f"twice for a user (row {at + 1}: {shorten(repr(lists['rank'].iloc[at]), 20)}); give "
                             "each user's ranks from 1 (or drop the column: then 'score', else each user's rows in "
                             "order)")
        lists = lists.assign(rank=rank).sort_values("rank", kind="stable")  # each user's in rank order (ids of
                                                                            # mixed kinds are never compared)
    elif "score" in lists.columns:
        score = pd.to_numeric(lists["score"], errors="coerce")  # a text '10' below '2' (a review)
        if (score.isna() & lists["score"].notna()).any():  # a missing score: last in its list
            bad = lists["score"][score.isna() & lists["score"].notna()].iloc[0]
            raise UsageError(f"score_lists: lists' 'score' column holds {shorten(repr(bad), 30)}, not a number; give "
                             "numbers (higher first), or a 'rank' column")
        lists = lists.assign(score=score).sort_values("score", ascending=False, kind="stable", na_position="last")
    lists = lists.assign(_rank=lists.groupby("user_id", sort=False).cumcount().to_numpy())
    return lists


def _catalogue_size(catalogue) -> int:
    if isinstance(catalogue, (bool, np.bool_)) or not isinstance(catalogue, (int, np.integer)) or catalogue < 1:
        raise UsageError(f"score_lists: catalogue={shorten(repr(catalogue), 40)}: give the number of movies in the "
                         "catalogue (a whole number >= 1)")
    return int(catalogue)


RESERVED = ("model", "most_popular", "global_mean", "biases")  # evaluate's own rows: no list takes their names
_ALIASES = {"user_id": ("userid", "user", "uid"), "movie_id": ("movieid", "itemid", "item_id", "item", "movie", "iid")}


def _list_scored(name: str, frame, truth, ks, **kw):
    """:func:`_score` of one named list (a ``--lists`` file's name, or ``lists=``'s key), its refusals said of it
    (a first-hour review: 'score_lists: ...' named no file of several)."""
    try:
        return _score(frame, truth, ks, **kw)
    except UsageError as e:
        raise UsageError(f"«{name}|lists[{name!r}]»: {e.raw.removeprefix('score_lists: ')}") from None


def read_lists(path, pairs: bool = False, columns: dict[str, str] | None = None):
    """A file of top-K lists as ``score_lists`` takes them: ``.parquet``, ``.jsonl``/``.json`` (what ``recommend
    --users`` writes) by its name, else a text table, tab-, ';'- or comma-separated by its first line; a CSV's or TSV's ids read as text (``score_outside_lists``
    gives them the dataset's kind: a review found a text-id run's own export unscorable), ``userId``/``movieId``/
    ``item_id`` and the like taken for ``user_id``/``movie_id`` as ingest takes them. A folder: its files read so, in
    name order, as one table (``export --topk-all DIR``'s ``part-*.parquet``; names starting with '.' or '_', an
    export's record or Spark's ``_SUCCESS``, left out). DataError naming the file where it cannot be read.
    ``pairs``: the file holds held-out pairs (``evaluate --truth``), said so where it is none. ``columns``: the
    names the run's dataset gives the ids ({"user_id": "customer_id", ...}: user_update_settings.id_columns), read
    as user_id and movie_id too."""
    from pathlib import Path

    import pandas as pd

    p = Path(path)
    if str(path) != "-" and p.is_dir():
        try:
            parts = sorted(f for f in p.iterdir() if not f.name.startswith((".", "_")))
        except PermissionError:
            raise DataError(f"{path}: not readable (permission denied)") from None
        if not parts:
            raise DataError(f"{path}: a folder with no files of lists in it («export --topk-all DIR|Model.topk_all(DIR)» "
                            "writes part-*.parquet there)")
        from embedrec.verify import EXPORT_MARKER, verify_path

        if (p / EXPORT_MARKER).is_file():  # an export's folder: its parts checked against its sealed record first (a
            verify_path(p)                 # red team: a damaged part was scored, exit 0, where verify refused it)
        frames = [_named_columns(_read_lists_file(f, f), f, columns=columns) for f in parts]
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    else:
        frame = _named_columns(_read_lists_file(p, path, pairs), path, alone=True, pairs=pairs, columns=columns)
    return frame


def _named_columns(frame, part, alone: bool = False, pairs: bool = False, columns: dict[str, str] | None = None):
    """``frame`` with ``userId``/``item_id`` and the like (and ``columns``' names: :func:`read_lists`) taken for
    ``user_id``/``movie_id``; a folder's ``part`` without them is refused naming it (a review: a README.md in the
    folder read as an empty table, another export's Parquet as lists with missing ids), and so is a file given
    ``alone``, with the names taken (a first-hour review: `evaluate --lists FILE` answered with a pandas rename for
    Python)."""
    own = {col: name for col, name in (columns or {}).items() if name and name != col}
    given = list(frame.columns)  # (as the file names them, for the message)
    for col, other in _ALIASES.items():
        if col not in frame.columns and own.get(col) in frame.columns:
            frame = frame.rename(columns={own[col]: col})
        if col not in frame.columns:
            hits = [c for c in frame.columns if str(c).lower().replace(" ", "") in other
                    or str(c).lower().split(":")[0] in (col, *other)]  # (RecBole's user_id:token, item_id:token)
            if len(hits) == 1:
                frame = frame.rename(columns={hits[0]: col})
    missing = [c for c in _ALIASES if c not in frame.columns]
    if missing:
        cols = shorten(", ".join(map(str, given)), 200) or "none"
        if alone:
            names = "; ".join(f"{c} (or {', '.join(([own[c]] if c in own else []) + list(_ALIASES[c]))})"
                              for c in missing)
            what = "held-out pairs" if pairs else "lists"
            raise DataError(f"{part}: not a file of {what} (no {' or '.join(missing)} column; its columns: {cols}); "
                            f"name its columns {names}" + ("" if pairs else ", with rank or score"))
        if part is not None:
            raise DataError(f"{part}: not a file of lists (no {' or '.join(missing)} column; its columns: {cols}); a "
                            "folder of lists holds only the lists' parts: move that file out of it")
    return frame


def _separator(first: bytes) -> str:
    """A text table's separator by its first line's bytes (data.rowlines.separator, ``predict --pairs``' rule)."""
    from embedrec.data.rowlines import separator

    return separator(first.decode("utf-8", errors="replace"))


# byte-order marks (UTF-32's first: its little-endian one begins with UTF-16's) and what they mark
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"),
         (b"\xfe\xff", "utf-16"))


def _read_text_table(src, sep: str, path, head: bytes):
    """A text table of lists as a DataFrame of text (``src()``: what pandas reads, given again for a second read),
    UTF-8 (its byte-order mark or none), UTF-16 or UTF-32 by theirs (Excel's 'Unicode text'). A file that is not
    UTF-8 is read as Windows-1252, Excel's Western encoding (Latin-1's letters are the same bytes), said in a
    warning naming its first such line (a review: a latin-1 file was refused over a title column no score reads,
    naming no line)."""
    import pandas as pd

    enc = next((e for mark, e in _BOMS if head.startswith(mark)), "utf-8")
    try:
        return pd.read_csv(src(), sep=sep, dtype=str, keep_default_na=False, encoding=enc)
    except UnicodeDecodeError as e:
        if enc != "utf-8":
            raise
        line, byte = _first_not_utf8(src(), e)
        log.warning("%s:%s is not UTF-8 (byte 0x%02x): read as Windows-1252, Excel's Western encoding, where it is "
                    "%r; save the file as UTF-8 if it is in another", path, line, byte,
                    bytes([byte]).decode("cp1252", errors="backslashreplace"))
        return pd.read_csv(src(), sep=sep, dtype=str, keep_default_na=False, encoding="cp1252",
                           encoding_errors="backslashreplace")  # (its 5 unused bytes as escapes)


def _first_not_utf8(src, e: UnicodeDecodeError) -> tuple[int | str, int]:
    """(the line, the byte) of a text file's (a path or a binary stream; gzip, bzip2 and xz read through) first
    byte that is not UTF-8; line '?' where it is not found (the decoder's own error then gives the byte)."""
    import bz2
    import gzip
    import lzma

    own = hasattr(src, "read")
    name = str(src).lower()
    if not own and name.endswith((".zip", ".zst", ".tar")):  # (read by pandas alone: the decoder's byte said)
        return "?", e.object[e.start] if isinstance(e.object, bytes) else 0
    opener = gzip.open if name.endswith(".gz") else bz2.open if name.endswith(".bz2") else \
        lzma.open if name.endswith(".xz") else open  # (a diff review: a .bz2's compressed bytes were named)
    fh = src if own else opener(src, "rb")
    try:
        for n, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                return n, raw[bad.start]
    finally:
        if not own:
            fh.close()
    return "?", e.object[e.start] if isinstance(e.object, bytes) else 0


def _first_line(p) -> bytes:
    """A text file's first line (1 MiB at most), gzip, bzip2 and xz read through; b'' where it cannot be read as such (the read
    itself then says why)."""
    import bz2
    import gzip
    import lzma

    name = p.name.lower()
    opener = gzip.open if name.endswith(".gz") else bz2.open if name.endswith(".bz2") else \
        lzma.open if name.endswith(".xz") else open  # (a review: a .tsv.bz2's lines were split at ',')
    try:
        with opener(p, "rb") as fh:
            return fh.readline(1 << 20)
    except (OSError, EOFError, lzma.LZMAError):
        return b""


def _renames(columns, missing: list[str]) -> dict:
    """The rename that would give a frame of ``columns`` the ``missing`` id columns, for a message's example: each
    from a column spelt as one of its other names (two such: the first, as :func:`_named_columns` takes none of
    them), else from the first column no other role reads ('u', 'i' of u,i,rank), else from 'userId'/'movieId'."""
    names = [c for c in columns if isinstance(c, str)]
    spelt = {col: [c for c in names if c.lower().replace(" ", "") in _ALIASES[col]] for col in missing}
    claimed = {c for hits in spelt.values() for c in hits} | {"user_id", "movie_id", "rank", "score"}
    free = [c for c in names if c not in claimed]
    out = {}
    for col in missing:
        given = next((c for c in spelt[col] if c not in out), None) or (free.pop(0) if free else None)
        out[given or {"user_id": "userId", "movie_id": "movieId"}[col]] = col
    return out


def _read_lists_file(p, path, pairs: bool = False):
    """One file of lists (``path`` as given, for the messages) as a DataFrame. Text that is no table (NUL bytes,
    /dev/zero, random bytes) is refused from its first MiB before the rest is read (a red team: a 5 MB file of NULs
    took 542 MB, /dev/zero grew until it was killed), as ``ingest`` and ``update-users`` refuse it."""
    import pandas as pd

    from embedrec.data.textfiles import read_stream, refuse_binary_file, refuse_binary_head

    def text_only(head: bytes) -> None:
        if head[:4] != b"PAR1":  # (Parquet is binary, and read as such)
            refuse_binary_head(head, str(path))

    name = p.name.lower()
    if str(path) != "-" and not name.endswith(".parquet") and p.is_file():
        refuse_binary_file(p, str(path))
    try:
        if str(path) == "-" or not (name.endswith((".parquet", ".jsonl", ".json")) or p.is_file()):
            # stdin, or a pipe named as a path (<(cmd), /dev/stdin: a review found its first lines taken by the
            # separator's read, then the table read without them): read once, JSON lines where it starts with '{',
            # else a text table by its first line's separator
            import io
            import sys

            if str(path) == "-":
                data = read_stream(sys.stdin.buffer, text_only)
            else:
                with open(p, "rb") as fh:
                    data = read_stream(fh, text_only)
            head = data.lstrip()[:1]
            if data[:4] == b"PAR1":
                frame = pd.read_parquet(io.BytesIO(data), page_checksum_verification=True)
            elif head == b"{":
                frame = pd.read_json(io.BytesIO(data), lines=True, dtype=False)
            elif head == b"[":  # recommend --format json's array (a shell review: a tokenizing error)
                frame = pd.read_json(io.BytesIO(data), dtype=False)
            else:
                frame = _read_text_table(lambda: io.BytesIO(data), _separator(data.split(b"\n", 1)[0]), path,
                                         data[:4])
        elif name.endswith(".parquet"):
            frame = pd.read_parquet(p, page_checksum_verification=True)
        elif name.endswith((".jsonl", ".json")):
            frame = pd.read_json(p, lines=name.endswith(".jsonl"), dtype=False)
        else:
            first = _first_line(p) if not name.endswith((".zst", ".zip", ".tar")) else b""
            sep = _separator(first) if first else "\t" if name.endswith((".tsv", ".tab", ".tsv.gz")) else ","
            frame = _read_text_table(lambda: p, sep, path, first[:4])  # (by its first line: recommend writes
            # TSV to a pipe whatever the file is named, a first-hour review's mylists.csv)
    except DataError:  # (its own refusal: text that is no table)
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; give the lists' file (user_id, movie_id, and rank or score)") from None
    except IsADirectoryError:
        raise DataError(f"{path}: a folder, not a file of lists") from None
    except PermissionError:
        raise DataError(f"{path}: not readable (permission denied)") from None
    except Exception as e:  # noqa: BLE001 - pandas' and pyarrow's parse errors: one line naming the file
        if "CRC checksum verification failed" in str(e):  # (export's parts carry page checksums: session 71)
            raise DataError(f"{path}: a damaged Parquet file (a page's checksum does not match its bytes); write "
                            "it again («embedrec export --topk-all|Model.topk_all»), or copy it again from where it "
                            "was written") from None
        what, cols = ("held-out pairs", "user_id and movie_id columns") if pairs else \
            ("lists", "user_id, movie_id, and rank or score columns")
        raise DataError(f"{path}: not a readable table of {what} ({first_line(e)}); give CSV, TSV, JSON lines or "
                        f"Parquet with {cols}") from None
    return frame


def check_lists(lists) -> None:
    """``evaluate``'s ``lists`` argument: a dict of {name: lists}, no name one of evaluate's own rows (said before
    the model is scored, not after: a review)."""
    if lists is None:
        return
    if not (isinstance(lists, dict) and all(isinstance(n, str) and n for n in lists)):
        raise UsageError("evaluate: lists must be a dict of {name: a DataFrame of top-K lists}, e.g. "
                         "lists={'implicit_als': frame}")
    taken = [n for n in lists if n in RESERVED]
    if taken:
        raise UsageError(f"lists: the name {taken[0]!r} is the model's or a baseline's; give the lists another")


def _as_truth_kind(frame, truth):
    """``frame``'s id columns in ``truth``'s kind where the change loses nothing: text of plain integers ('196',
    not '0196' or '+1'; '196.0', a whole float as pandas writes one, too) as integers for a dataset of integer ids,
    a column of them where only some are (the others, a word, '', '1.5', kept as written: ids the dataset does not
    have); integers as text for one of text ids."""
    import pandas as pd

    out = {}
    for col in ("user_id", "movie_id"):
        have, want = frame[col], truth[col]
        if pd.api.types.is_integer_dtype(want) and not pd.api.types.is_numeric_dtype(have):
            # ('22.0', as pandas writes a column that held a NaN: the integer it is, as --truth reads it; a
            # first-hour review: refused in --lists, read in --truth)
            text = have.astype(str).str.strip().str.replace(r"^(-?[0-9]+)\.0*$", r"\1", regex=True)
            # (an integer of 19 digits or more only where int64 holds it: a red team's 5,000-digit id was an internal
            # error, and pandas reads 2^63 and up as uint64, whose int64 would wrap: such an id is no dataset's)
            plain = text.str.fullmatch(r"-?(?:0|[1-9][0-9]{0,17})").to_numpy(dtype=bool, copy=True)
            long = np.flatnonzero(~plain & text.str.fullmatch(r"-?[1-9][0-9]{18}").to_numpy(dtype=bool))
            plain[long] = [-2**63 <= int(t) < 2**63 for t in text.to_numpy()[long]]
            if plain.all() and len(text):
                out[col] = pd.to_numeric(text).astype("int64")
            elif plain.any():  # a few ids no integer (a word, an empty field, '1.0': a review found the whole file
                # refused over one): the others as integers, those kept as written, ids the dataset does not have
                # (a miss each, counted and said as such, '1.0' as 1 written another way)
                mixed = have.astype(object).copy()
                # (as objects: a Series set through the mask made every integer a float, 1234567890123456789 read
                # as 1.2345678901234568e+18, no id of the dataset's)
                mixed[plain] = pd.to_numeric(text[plain]).astype("int64").map(int).to_numpy(dtype=object)
                out[col] = mixed
        elif not pd.api.types.is_numeric_dtype(want) and pd.api.types.is_integer_dtype(have):
            out[col] = have.astype(str)
    return frame.assign(**out) if out else frame


def score_outside_lists(result: dict, ds, split: str, ks, lists: dict) -> None:
    """Each of ``lists`` ({name: a DataFrame of top-K lists, user_id, movie_id, rank or score: a peer's}) scored
    on ``split`` of ``ds`` by ``list_metrics.score_lists`` (evaluate's metrics, its users: those of the split),
    as ``result["splits"][split][name]``, beside the model and the baselines; the catalogue is the dataset's
    movies, and the beyond-accuracy metrics are measured against the training data the model's were
    (``result["beyond_accuracy"]``: :func:`beyond_of_lists`). Rows naming a movie the user rated in the splits the
    model's lists leave out (train, and valid on test; and those rated below data.min_rating in them:
    sparse.seen_csr) are counted in one warning each: such a list is not ranked as the model's are."""
    import pandas as pd

    from embedrec.beyond import catalogue

    truth = ds.split_frame(split)
    counted = (result.get("beyond_accuracy") or {}).get("popularity_counted_on")
    cat = catalogue(ds, tuple(counted.split("+"))) if counted else None
    below = _below_seen(ds, split)
    seen = pd.concat([ds.split_frame(s)[["user_id", "movie_id"]] for s in seen_splits(split)] + below,
                     ignore_index=True)
    row = result["splits"][split]
    for name, frame in lists.items():  # (names checked by check_lists before the model was scored)
        if type(frame).__name__ != "DataFrame" and callable(getattr(frame, "to_frame", None)):
            frame = frame.to_frame()
        if type(frame).__name__ == "DataFrame" and frame.columns.nlevels == 1 and not frame.columns.duplicated().any():
            frame = _named_columns(frame, None)  # userId, item, ... as score_lists takes them (a review: a KeyError
            # here, where the rows rated before were counted, on a frame the CLI read with those names)
        if type(frame).__name__ == "DataFrame" and {"user_id", "movie_id"} <= set(frame.columns):
            frame = _as_truth_kind(frame, truth)
        # said once a list, naming it and the option that sets k (a notebook review: twice, as score_lists)
        row[name] = _list_scored(name, frame, truth, ks, per_user=False, catalogue=ds.n_movies,
                                 where=f"«evaluate --lists|evaluate(lists=...)»: list '{name}' (k from «-k|ks=»)",
                                 known=ds.movies["movie_id"])
        beyond = beyond_of_lists(frame, ds, truth, ks, cat) if cat is not None else None
        if beyond is not None:
            row[name].update(beyond[0])
        if result.get("per_user") is not None:  # a review: --per-user left the lists out, the pairing it is for
            mine = _score(frame, truth, ks, per_user=True, catalogue=ds.n_movies, where=None,
                          known=ds.movies["movie_id"]).drop(
                columns="n_relevant")
            if beyond is not None:
                mine = mine.merge(beyond[1], on="user_id", how="left")
            result["per_user"] = result["per_user"].merge(
                mine.rename(columns={c: f"{name}:{c}" for c in mine.columns if c != "user_id"}), on="user_id",
                how="left")
        cols = ["user_id", "movie_id"]
        try:
            rated = len(frame[cols].merge(seen, on=cols, how="inner"))
        except (ValueError, TypeError):  # ids of another kind than the dataset's: none matches, as score_lists said
            rated = 0
        if rated:
            log.warning("%s: %s of its rows name a movie the user rated in %s%s, which the model's lists leave out; "
                        "drop them for a like-for-like comparison", name, f"{rated:,}", " and ".join(seen_splits(split)),
                        " (or rated below data.min_rating there)" if below else "")
        # a review: ids the dataset does not have (an id mapping's slip: 374 for m0374) scored 0 in silence and
        # counted in coverage; coverage is now of the dataset's movies, and a script reads both counts in the JSON
        known = frame["movie_id"].isin(ds.movies["movie_id"]).to_numpy()
        unknown = int(np.count_nonzero(~known))
        if unknown:
            from embedrec.data.ids import py_id

            absent = frame["movie_id"][~known]
            log.warning("%s: %s of its rows name a movie id this dataset does not have (e.g. %s), each a miss and left "
                        "out of coverage and the beyond-accuracy metrics; %s", name, f"{unknown:,}",
                        shorten(repr(py_id(absent.to_numpy()[0])), 40), _written_apart(absent, ds.movies["movie_id"], "movies") or
                        "map the lists' ids back to the dataset's")
            # (coverage counts the dataset's movies at their own ranks: _score's known=, a diff review found the
            # known rows ranked again here, a movie at rank 2 behind an unknown one counted at k=1)
        # a first-hour review: rows of users the dataset does not have were left out of every figure unsaid
        stranger = ~frame["user_id"].isin(ds.users["user_id"]).to_numpy()
        strangers = int(np.count_nonzero(stranger))
        if strangers:
            stray = frame["user_id"][stranger].drop_duplicates()
            log.warning("%s: %s of its rows, the lists of %s, name a user this dataset does not have (%s): they are "
                        "left out of every figure, as the lists of users with no %s rating are; %s", name,
                        f"{strangers:,}", f"{len(stray):,} user{'s' if len(stray) > 1 else ''}", _first_ids(stray),
                        split, _written_apart(stray, ds.users["user_id"], "users") or
                        "where they are the dataset's users under other ids, map the lists' ids back to the dataset's "
                        "(ids are matched as written)")
        without = row[name].get("users_without_list", 0)
        if without:
            log.warning("%s: %s of the %s users of %s have no list, each scored 0 (AUC an empty list's)", name,
                        f"{without:,}",
                        f"{row[name]['users_evaluated']:,}", split)
        row[name]["rows_rated_in_training"], row[name]["rows_unknown_movie"] = rated, unknown
        row[name]["rows_unknown_user"] = strangers


def _first_ids(ids, shown: int = 5) -> str:
    """The first ``shown`` of ``ids`` (a Series of distinct ids) as a message names them, '...' after where there
    are more: "99999, 99998" or "'u7', 'u9', ..."."""
    from embedrec.data.ids import py_id

    named = [shorten(repr(x) if isinstance(x, str) else str(x), 40) for x in map(py_id, ids.iloc[:shown])]
    return ", ".join(named) + (", ..." if len(ids) > shown else "")


def _written_apart(absent, known, what: str) -> str | None:
    """What to say of the ``absent`` ids of a list (a Series: its rows' movie ids, or its users) that are ids of
    the dataset (``known``) written another way, ``what`` they are ('movies', 'users'): how many, an example pair
    and how to write them (a review: a peer's lists whose ids had lost their leading zeros, '40' for the dataset's
    '0040', scored 0.139 where they score 0.273); None where none is. They are never joined so
    (data.ids.written_apart)."""
    import pandas as pd

    from embedrec.data.ids import written_apart

    distinct = pd.unique(absent)
    hits, first = written_apart(distinct, known.to_numpy())
    if first is None:
        return None
    rows, n = int(absent.isin(distinct[hits]).sum()), int(hits.sum())
    ours, theirs = (repr(x) if isinstance(x, str) else str(x) for x in first)
    where = "" if what == "users" else f"in {'all' if rows == len(absent) else f'{rows:,} of'} those rows "
    return (f"{where}the lists name {n:,} of the dataset's {what if n > 1 else what[:-1]} with "
            f"{'their ids' if n > 1 else 'its id'} written another way ({ours} in the lists is {theirs} in the "
            f"dataset): write the lists' ids as the dataset writes them ({theirs} for {ours}) and evaluate again "
            "(ids are matched as written)")


def _below_seen(ds, split: str) -> list:
    """[a DataFrame of the (user_id, movie_id) pairs rated below data.min_rating that the model's lists on ``split``
    leave out: those of the parts before it (sparse.seen_csr)], or [] where there are none."""
    import pandas as pd

    got = below_in(getattr(ds, "rated_below", None), getattr(ds, "rated_below_split", None), seen_splits(split))
    if got is None:
        return []
    return [pd.DataFrame({"user_id": ds.users["user_id"].to_numpy()[got[0]],
                          "movie_id": ds.movies["movie_id"].to_numpy()[got[1]]})]


def beyond_of_lists(frame, ds, truth, ks, cat) -> tuple[dict, object]:
    """The beyond-accuracy metrics (``embedrec.beyond``) of lists ``frame`` over the users of ``truth`` (those
    ``score_lists`` scores), at each of ``ks``, against Catalogue ``cat`` of dataset ``ds``: (the means, in
    evaluate's order; a DataFrame of user_id and each user's per-user values). A movie the dataset does not have is
    left out (it has no training count), where it stands in a list's top k; a user without a list has no values."""
    import pandas as pd

    from embedrec.beyond import Exposure

    ks = sorted(set(ks))
    lists = _ordered(frame)
    users = pd.Index(truth["user_id"].drop_duplicates())
    row = users.get_indexer(lists["user_id"])
    movie = pd.Index(ds.movies["movie_id"]).get_indexer(lists["movie_id"])
    rank = lists["_rank"].to_numpy()
    has = unique(row[row >= 0])  # the users of truth with a list: a row each (as score_lists)
    slot = np.full(len(users), -1, np.int64)
    slot[has] = np.arange(has.size)
    width = max(1, min(max(ks), int(rank.max()) + 1 if rank.size else 1))  # no wider than the longest list
    keep = (row >= 0) & (rank < width)
    top = np.full((has.size, width), -1, np.int64)
    top[slot[row[keep]], rank[keep]] = movie[keep]  # (-1 where the dataset has no such movie)
    exposure = Exposure(cat, ks)
    values = exposure.values(top)
    per_user = pd.DataFrame({"user_id": np.asarray(users)})
    for key, v in values.items():
        column = np.full(len(users), np.nan)
        column[has] = v
        per_user[key] = column
    return exposure.result(), per_user


TRUTH = "truth"  # the split name a held-out file's figures are given under (evaluate --truth)


def _popular_lists(e, users, k: int):
    """most_popular's lists for ``users`` (ids; those the run knows): the movies with the most training ratings
    (the run's popularity: train and valid), each user's own rated ones left out as the model's lists leave them
    out (the run's seen pairs), by evaluate's own baseline lists (``sparse.PopularLists``)."""
    import pandas as pd

    from embedrec.sparse import PopularLists

    rows = e.catalogue.users.rows(list(users))[0]
    rows = rows[rows >= 0]
    top = PopularLists(e.popularity).top((e.seen_ptr, e.seen_idx), rows, k)
    user = np.repeat(rows, top.shape[1]).reshape(top.shape)
    rank = np.tile(np.arange(1, top.shape[1] + 1), (top.shape[0], 1))
    keep = top >= 0
    return pd.DataFrame({"user_id": np.asarray(e.user_ids)[user[keep]], "movie_id": np.asarray(e.movie_ids)[top[keep]],
                         "rank": rank[keep]})


def score_on_truth(model, truth, ks, lists: dict | None = None, name: str = "truth") -> dict:
    """``embedrec evaluate --truth FILE``: the run's own lists (``model.recommend`` of each user of ``truth``, as
    served: the user's movies in the data the run was trained on left out) and each of ``lists`` ({name: top-K
    lists, as :func:`score_lists` takes them: another recommender's on the same rows}) scored on ``truth`` (user_id,
    movie_id: the relevant pairs of a split made elsewhere, e.g. a held-out test file; every pair relevant), and the
    model's per-user figures minus each list's, paired user by user with its standard error: evaluate's result
    ({"splits": {"truth": {"model": ..., NAME: ...}}, "paired": {"truth": {NAME: {metric@K: ...}}}}). A user of
    ``truth`` the run does not know has no list of the model's (a miss, counted in ``users_without_list``); pairs
    the run was trained on are said in a warning (recommend never lists them back: each is a miss)."""
    import pandas as pd

    from embedrec.data.ids import py_id
    from embedrec.evaluate import check_ks
    from embedrec.evaluate_paired import paired_differences
    from embedrec.sparse import gather_csr

    check_lists(lists)  # (no list named as most_popular, the baseline beside it)
    if not ks:  # the run's own train.eval_k, as evaluate's default
        from embedrec.run_inputs import run_eval_k

        ks = run_eval_k(model.engine.run)
    ks = check_ks(ks)
    if type(truth).__name__ != "DataFrame":
        raise UsageError(f"{name}: must be a pandas DataFrame (user_id, movie_id), not {type(truth).__name__}")
    truth = _frame(truth, name, ("user_id", "movie_id"))
    if not len(truth):  # (a red team: a header alone scored nothing, blank figures, exit 0)
        raise UsageError(f"{name}: holds no pairs (a header alone, or no rows); give the held-out (user_id, movie_id) "
                         "pairs to score the lists on")
    ids = pd.DataFrame({"user_id": model.user_ids[:1], "movie_id": model.movie_ids[:1]})  # the model's kinds
    for col in ("user_id", "movie_id"):
        text = truth[col].astype(str).str.strip()
        if (text == "").any():  # an empty cell (a CSV's; a Parquet file's null is refused by _frame)
            row = int(np.flatnonzero((text == "").to_numpy())[0])
            raise UsageError(f"{name}: row {row + 1} has no {col}; drop the rows with a missing id first")
        # ids written as whole floats ('22.0', as pandas writes a column that held a NaN; a diff review: every user
        # unknown, every figure 0, exit 0), each one, as the integers they are
        if pd.api.types.is_integer_dtype(ids[col]) and not pd.api.types.is_numeric_dtype(truth[col]):
            whole = text.str.fullmatch(r"-?[0-9]+\.0*").to_numpy(dtype=bool)
            if whole.any():
                text = text.where(~whole, text.str.split(".").str[0])
                truth = truth.assign(**{col: text})
            # an integer beyond 64 bits (a red team's 5,000 digits: an internal error, then a refusal of 'mixed'
            # kinds naming all of it) refused naming its row; words are ids the run does not have, as before
            bad = text.str.fullmatch(r"-?[1-9][0-9]{18,}").to_numpy(dtype=bool, copy=True)
            long = np.flatnonzero(bad & (text.str.len() <= 20).to_numpy(dtype=bool))
            bad[long] = [not -2**63 <= int(t) < 2**63 for t in text.to_numpy()[long]]
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise UsageError(f"{name}: row {row + 1}: {col} {shorten(repr(text.iloc[row]), 40)} is an integer "
                                 "beyond 64 bits, which no id of this run's is (its ids are integers); write the "
                                 "file's ids as the run's dataset writes them, or drop that row")
            # some ids no integer ('abc', '0012') among integers: no user or movie of this run, whose ids are
            # integers; their pairs left out, said (a diff review: the mixed column failed the whole evaluation,
            # blaming most_popular); every one such: the refusals below (none of its users or movies is the run's)
            word = ~text.str.fullmatch(r"-?(?:0|[1-9][0-9]*)").to_numpy(dtype=bool)
            if word.any() and not word.all():
                log.warning("%s: %s of its %s pairs name a %s id that is no integer as this run's are (e.g. %s): no "
                            "%s of this run, those pairs left out of every figure; write the file's ids as the run's "
                            "dataset writes them", name, f"{int(word.sum()):,}", f"{len(text):,}", col.split("_")[0],
                            shorten(repr(text[word].iloc[0]), 40), col.split("_")[0])
                truth, text = truth[~word], text[~word]
                truth = truth.assign(**{col: text})
    truth = _as_truth_kind(truth, ids)[["user_id", "movie_id"]].drop_duplicates()
    e = model.engine
    users = pd.unique(truth["user_id"])
    rec = model.recommend(list(users), max(ks), missing="skip")
    if len(users) and len(rec.unknown) == len(users):  # none of them the run's: refused, as score_lists refuses
        raise UsageError(f"{name}: none of its {len(users):,} users is a user of this run (ids are matched as "
                         f"written: e.g. {py_id(users[0])!r}, where the run's are such as {py_id(model.user_ids[0])!r});"
                         " write the file's ids as the run's dataset writes them")
    m_rows = e.catalogue.movies.rows(truth["movie_id"].tolist())[0]
    if len(truth) and not (m_rows >= 0).any():  # another catalogue's ids (a diff review: scored 0, exit 0)
        raise UsageError(f"{name}: none of its movies is a movie of this run (e.g. "
                         f"{py_id(truth['movie_id'].iloc[0])!r}, where the run's are such as "
                         f"{py_id(model.movie_ids[0])!r}); write the file's ids as the run's dataset writes them")
    mine = rec.to_frame()[["user_id", "movie_id", "rank"]]
    n_movies = model.n_movies
    row = {"model": _score(mine, truth, ks, per_user=False, catalogue=n_movies, where="evaluate --truth: the model")}
    per = _score(mine, truth, ks, per_user=True, catalogue=n_movies, where=None).drop(columns="n_relevant")
    # the baseline evaluate prints beside every model (a first-hour review: none on a split made elsewhere)
    popular = {"most_popular": _popular_lists(e, users, max(ks))}
    for other, frame in {**popular, **(lists or {})}.items():
        if type(frame).__name__ != "DataFrame" and callable(getattr(frame, "to_frame", None)):
            frame = frame.to_frame()
        try:
            frame = _frame(frame, "the lists", ("user_id", "movie_id"))
        except UsageError as e:
            raise UsageError(f"«{other}|lists[{other!r}]»: {e.raw.removeprefix('score_lists: ')}") from None
        frame = _as_truth_kind(frame, truth)
        row[other] = _list_scored(other, frame, truth, ks, per_user=False, catalogue=n_movies,
                                  where=f"«evaluate --lists|lists=»: list '{other}' (k from «-k|ks=»)",
                                  known=model.movie_ids)
        theirs = _score(frame, truth, ks, per_user=True, catalogue=n_movies, where=None,
                        known=model.movie_ids).drop(columns="n_relevant")
        per = per.merge(theirs.rename(columns={c: f"{other}:{c}" for c in theirs.columns if c != "user_id"}),
                        on="user_id", how="left")
    # pairs of truth the run was trained on (a test file that overlaps the training rows): never listed back
    u_rows = e.catalogue.users.rows(truth["user_id"].tolist())[0]
    known = (u_rows >= 0) & (m_rows >= 0)
    trained = 0
    if known.any():
        r, c, _ = gather_csr(e.seen_ptr, e.seen_idx, unique(u_rows[known]))
        seen = set(zip(unique(u_rows[known])[r].tolist(), np.asarray(c, np.int64).tolist()))
        trained = sum((u, m) in seen for u, m in zip(u_rows[known].tolist(), m_rows[known].tolist()))
    absent = int(np.count_nonzero(m_rows < 0))
    if absent:  # an evaluation review: scored as misses of every list, unsaid and uncounted
        log.warning("%s: %s of its %s pairs name a movie this run does not have (e.g. %r): each stays relevant, a "
                    "miss of the model's and the most popular movies' lists, which never hold it (a --lists file that "
                    "lists it scores it)", name, f"{absent:,}", f"{len(truth):,}",
                    py_id(truth["movie_id"].to_numpy()[np.flatnonzero(m_rows < 0)[0]]))
    if trained:
        log.warning("%s: %s of its %s pairs are movies the user rated in the data the run was trained on: recommend "
                    "never lists those back, so each is a miss; give the held-out pairs alone (ingest the training "
                    "rows without them), or score the run trained on the rows without them«, with --run RUN (a plain "
                    "`train` trains the config's dataset, not the one just ingested)|: open that run»", name,
                    f"{trained:,}", f"{len(truth):,}")
    return {"splits": {TRUTH: row}, "paired": {TRUTH: paired_differences(per)},
            "truth": {"pairs": int(len(truth)), "users": int(len(users)), "users_unknown": int(len(rec.unknown)),
                      "pairs_trained_on": int(trained), "pairs_unknown_movie": absent}}
