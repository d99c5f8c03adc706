"""Which of a generic ratings table's columns are read as what, for a header line's names and a Parquet file's
columns alike (data/tables.py asks, in this order): each data.columns name matched to the one column spelt like
it ('UserID' for user_id), or a default name to the field's other names ('item', 'score', 'ts': DEFAULT_ALIASES)
(``_match_columns``; before it, for update-users, a column the run's dataset named otherwise read under its default
name where the file has that one: ``_or_default``); the file's title and genres columns (META) read as its movies' where no data.movies is given
(``_movie_columns``); a default timestamp or rating column the file lacks left out, a file without times, or a log
of events or interactions, each row counting 1 (``_optional_timestamp``, ``_optional_rating``), a file without times
told which column holds dates or Unix times (``times_kind``); and, once every
column is found, the notes of how they were read, else one DataError naming the missing ones with the columns that
could be them: a close match, a column of numbers for a rating (``_sample_columns``, ``_column_kinds``), or a
column of event types and the data.event_weights that weighs them (``_require_columns``, ``_yaml_key``)."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from embedrec.config_values import plain_name
from embedrec.data.ids import is_number_text
from embedrec.data.parsing import WarnedNote
from embedrec.data.sniff import MOSTLY_DATES
from embedrec.errors import UNSAFE_CHARS, DataError, marked, sh_quote, shorten

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import DataConfig


_plain = plain_name


# What the default column names are also called in the field's files (LensKit and Surprise: user,item,rating;
# Spotlight/RecBole-like exports: uid/iid): read when the config keeps the default name, no column is a spelling
# of it ('userId'), and exactly one column is so named; else data.columns names it
# Id-shaped names come before bare ones: 'item_id' is the movie beside a 'movie' column of titles.
# The rating and its time under the names a first-hour review's own files used (score, stars; ts, event_time:
# read without times before, so the time splits were refused and duplicates kept by file order). Not 'date': a
# review's 'date' held years and free text ('1995' read as second 1995), so it stays data.columns.timestamp's.
DEFAULT_ALIASES = {"user_id": ({"uid"}, {"user"}, {"username"}),  # (username last: a first-hour review's export;
                   # a review: first, it took a 'username' column over the 'user' ids beside it)
                   "movie_id": ({"itemid", "iid"}, {"movie", "item"}),
                   "rating": ({"score", "stars", "rate"},),
                   "timestamp": ({"ts", "datetime", "eventtime", "ratedat", "createdat"},)}


def _match_columns(found, wanted: dict) -> tuple[dict, list[str]]:
    """``wanted`` (file column -> role) with each name the file lacks replaced by the one column that differs
    from it only in case, spaces or punctuation ('UserID', 'userId', ' movie_id' after a ', ' separator), when
    exactly one does and no other role reads it; anything else is left for _require_columns to report. Also
    returns what was matched, which _require_columns says once every column is found (else two lines)."""
    from embedrec.config import ColumnsConfig

    names = [str(c) for c in found]
    plain = {c: _plain(c) for c in names}  # (once a name: a header of 120,000 names, a red team)
    out, taken = {}, []

    def matching(spellings: set[str]) -> list[str]:
        return [c for c in names if plain[c] in spellings and c not in wanted and c not in out
                and c.isprintable()]  # a newline or NUL inside a name is damage to report, not a spelling

    for col, role in wanted.items():
        hits = matching({_plain(col)})
        if not hits and col not in names and col == getattr(ColumnsConfig, role.replace("_id", ""), None):
            for spellings in DEFAULT_ALIASES.get(role, ()):  # a default name: the field's other names, after it
                hits = matching(spellings)
                if hits:
                    break
        if col not in names and len(hits) == 1:  # said by the role (a first-hour review: data.columns.timestamp=date
            taken.append(f"{hits[0]!r} as {role!r}")  # read ' date' and said "' date' as 'date'")
            col = hits[0]
        out[col] = role
    return out, taken


def _or_default(found, wanted: dict, keys) -> dict:
    """``wanted`` (file column -> role) with the name of each role whose data.columns key is in ``keys`` ('user',
    'movie', 'rating', 'timestamp') replaced by the role's default name (user_id, movie_id, rating, timestamp) where
    no column of ``found`` is spelt like the name and one is spelt like the default, which no other role reads:
    update-users reads its file under the names the run's dataset was ingested with, or under the documented ones
    (a first-hour review: a run ingested from customer_id,product_id refused a since-file of user_id,movie_id,
    which its -h documents). The spelling is then _match_columns' to match, and what was read recorded as any
    other name's (RawData.columns_read)."""
    from embedrec.config import ColumnsConfig

    spelt = {_plain(str(c)) for c in found if str(c).isprintable()}
    out = {}
    for col, role in wanted.items():
        key = role.replace("_id", "")
        default = getattr(ColumnsConfig, key, None)
        if key in keys and default and _plain(str(col)) not in spelt and _plain(default) in spelt and \
                default not in wanted and default not in out:
            col = default
        out[col] = role
    return out


def passed_over(found, wanted: dict, keys) -> dict:
    """{data.columns key: (the column read, the file's column of its default name)} for each role whose key is in
    ``keys`` (those :func:`_or_default` may read by the default name) read under another name while the file also
    has a column spelt like the default: the file names both (a red team: update-users read a file's 'user_id'
    over its 'customer_id', the name the run's dataset read its users by), and the one read is said."""
    from embedrec.config import ColumnsConfig

    names = {_plain(str(c)): str(c) for c in found if str(c).isprintable()}
    out = {}
    for col, role in wanted.items():
        key = role.replace("_id", "")
        default = getattr(ColumnsConfig, key, None)
        if key in keys and default and _plain(str(col)) != _plain(default) and _plain(default) in names and \
                _plain(str(col)) in names:
            out[key] = (names[_plain(str(col))], names[_plain(default)])
    return out


# The words a column's name is made of (its plain name, a trailing 'id' left out: 'customer_id' is 'customer')
# where it names the user or the movie of a shop's, a library's or a player's table: read as that role where the
# default column is missing and exactly one column is so named (_guess_ids)
ID_WORDS = {"user_id": frozenset({"user", "customer", "client", "visitor", "member", "account", "person", "buyer",
                                  "shopper", "reader", "viewer", "listener", "player", "subscriber"}),
            "movie_id": frozenset({"movie", "item", "product", "article", "sku", "film", "book", "song", "track",
                                   "video", "asin", "isbn", "artist", "game", "anime", "recipe", "course"})}


# A column's name as an id's, for the last guess (_guess_ids): 'movie_id', 'movie-id', 'movieId', 'MOVIE_ID', 'id'
ID_NAME = re.compile(r"(?:^|[_\-\s.])[iI][dD]$|[a-z]Id$|ID$")
# ... and the ids of a row or an event, which name no user or movie: never guessed
ROW_IDS = frozenset({"session", "review", "order", "transaction", "event", "row", "record", "interaction", "line",
                     "request", "click", "impression", "log", "basket", "cart", "rating", "visit", "", "index"})


def _guess_ids(found, wanted: dict, cfg: DataConfig, label: str) -> list[str]:
    """Where the default user or movie column is missing (no column spelt like it, nor one of its aliases), the
    one column left that can be it, added to ``wanted`` under that role: the one whose name says so (ID_WORDS:
    'customer_id', 'article_id', 'sku'), then, where a role is still missing, the one column left named as an id
    ('..._id'). A first-hour review: a shop's customer_id,article_id,rating and user_id,product_id,rating were
    refused, the one column each could be only offered. Returns the note naming the guess and the key that names
    another column; none where nothing was guessed."""
    from embedrec.config import ColumnsConfig

    names = [str(c) for c in found]
    roles = {"user_id": ("user", ColumnsConfig.user), "movie_id": ("movie", ColumnsConfig.movie)}
    missing = [role for role, (key, default) in roles.items()
               if getattr(cfg.columns, key) == default and default in wanted and default not in names]
    if not missing:
        return []

    meta = {_plain(m) for m in META}

    def free() -> list[str]:
        return [c for c in names if c not in wanted and c.isprintable() and _plain(c) not in meta]

    def stem(c: str) -> str:
        return re.sub(r"id$", "", _plain(c))

    def last_word(c: str) -> str:  # 'product_sku' -> 'sku', 'CustomerEmail' -> 'email' ('id' left out)
        words = [w for w in re.split(r"[_\-\s.]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", c).lower()) if w and w != "id"]
        return words[-1] if len(words) > 1 else ""

    guessed = {}
    # by the whole name first ('track_id'), then by its last word where none is ('product_sku', 'item_asin': an
    # own-data review found them offered, not taken; a diff review: 'track_id' beside 'track_artist' stays taken)
    hits = {role: [c for c in free() if stem(c) in ID_WORDS[role]] for role in missing}
    hits = {role: found or [c for c in free() if last_word(c) in ID_WORDS[role]] for role, found in hits.items()}
    for role in missing:
        other = [c for r, cs in hits.items() if r != role for c in cs]
        if len(hits[role]) == 1 and hits[role][0] not in other:
            guessed[role] = hits[role][0]
    for role, col in guessed.items():
        del wanted[roles[role][1]]
        wanted[col] = role
    left = [role for role in missing if role not in guessed]
    # named as an id ('..._id', 'fooId', 'FOO_ID'; not 'is_paid', 'valid'), and not one a row or an event has
    # ('session_id', 'review_id': a code review found them, and 'is_paid', taken as the movie)
    ids = [c for c in free() if ID_NAME.search(c) and stem(c) not in ROW_IDS]
    if len(left) == 1 and len(ids) == 1 and not hits[left[0]]:  # (two named as it: neither taken)
        guessed[left[0]] = ids[0]
        del wanted[roles[left[0]][1]]
        wanted[ids[0]] = left[0]
    if not guessed:
        return []
    said = " and ".join(f"{c!r} as the {roles[r][0]}" for r, c in guessed.items())
    keys = " ".join(f"--set data.columns.{roles[r][0]}=NAME" for r in guessed)
    libs = ", ".join(f"data.columns.{roles[r][0]}=NAME" for r in guessed)
    # every column the guess left unread named, for the one that may have been meant (a first-hour review: 'the
    # one column left that can be it' of a file whose 'plays' column was left too)
    rest = [c for c in names if c not in wanted]
    unread = f"the columns left unread: {', '.join(repr(c) for c in rest)}; " if rest else ""
    return [f"{label}: guessed column{'s' if len(guessed) > 1 else ''} {said}, the one column left that can be "
            f"{'each' if len(guessed) > 1 else 'it'} ({unread}«{keys}|{libs}» names another)"]


def _typed(col: str, found: list[str]) -> str:
    """The name to give a data.columns key for the column ``col`` of ``found``: its surrounding spaces stripped (' date'
    after a '; ' separator: a data.columns name is matched to the one column that differs from it only in spaces, case
    or punctuation, so 'date' reads it; a first-hour review was told --set 'data.columns.timestamp= date'), unless
    another column is named so."""
    bare = col.strip()
    return bare if bare and (bare == col or bare not in found) else col


def column_set(key: str, name: str) -> tuple[str, str] | None:
    """(the CLI's ``KEY=NAME`` for ``--set``, the library's) naming the column ``name`` whole, each as plain as it
    reads back: the name in YAML's double quotes where --set's YAML would read it as something else ('yes', '5', a
    space, a control character; :func:`_yaml_key`), the whole argument in the shell's quotes where a shell would
    split it, and the library's ``KEY='NAME'`` where either is needed; None where the name so written is longer
    than WEIGHTS_MAX characters (no command then: session 52's red team found a name of more than 60 characters
    cut with '[...]' inside the --set the missing-rating-column advice offered, which could not be pasted)."""
    value = _yaml_key(name)
    if len(value) > WEIGHTS_MAX:
        return None
    cli = sh_quote(f"{key}={value}")
    return (cli, cli) if value == name and cli == f"{key}={value}" else (cli, f"{key}={name!r}")


def _set_said(sets: list[tuple[str, str]]) -> str:
    """«--set A --set B|A, B»: ``column_set``'s pairs as one mark (the CLI's form alone where a name holds a
    character of the mark: errors.marked)."""
    return marked(" ".join(f"--set {c}" for c, _ in sets), ", ".join(lib for _, lib in sets))


def _too_long(key: str, name: str) -> str:
    """What a message says in place of a command naming a column too long to write (column_set's None)."""
    return f"set {key} to its column {shorten(name, 60)!r} (its name, {len(name):,} characters, too long to write here)"


def _close_column(col: str, found: list[str], wanted: dict) -> list[str]:
    """The found column closest to the name ``col`` (at most one), among those not read for another role."""
    import difflib

    return difflib.get_close_matches(col, [c for c in found if c not in wanted], n=1, cutoff=0.6)


def _optional_timestamp(found, wanted: dict, cfg: DataConfig, sample=None, or_default=(),
                        taken: list | None = None) -> bool | str:
    """A file without the default 'timestamp' column, and none close to it that may hold times, is read without
    times (as Surprise and LensKit read user,item,rating files); a time-based split then says it needs them. A
    column named in the config is required, unless 'timestamp' is in ``or_default`` (update-users: the name is the
    run's dataset's, not the user's; a first-hour review: a file without times was refused for a dataset whose
    times were read from 'event_time', where one of 'timestamp' reads without them). Returns whether it was dropped (``_require_columns`` says so once the
    others are found): the name of the close column passed over where one holds words (``sample(cols)``: its
    first rows; :func:`_words`), True where none is close. A close column whose first rows are ISO 8601 dates
    (``history``'s 'time': a shell review could not ingest it back) is read as the times, said in ``taken``."""
    from embedrec.config import ColumnsConfig

    col = cfg.columns.timestamp
    found = [str(c) for c in found]
    if (col == ColumnsConfig.timestamp or "timestamp" in or_default) and col in wanted and col not in found:  # not matched by _match_columns
        close = _close_column(col, found, wanted)
        if close and taken is not None and _iso_dates(sample, close[0]):
            wanted[close[0]] = wanted.pop(col)
            taken.append(f"{close[0]!r} as 'timestamp' (ISO 8601 dates)")
            return False
        if close and not _words(sample, close[0]):
            return False  # e.g. 'time': probably the timestamps, under another name (_require_columns suggests it)
        del wanted[col]
        return close[0] if close else True
    return False


def dated_timestamp(found, wanted: dict, cfg: DataConfig, sample=None, or_default=(),
                    taken: list | None = None) -> None:
    """The one column of dates (ISO 8601 text, a Parquet datetime or date column: :func:`_times_columns`) of a file
    without the default 'timestamp' column nor one named close to it, taken as the times, said in ``taken`` (an own-data review: 'user_id,sku,clicked_at', a
    click log, was refused for want of a rating, its dates unread). Before the ids are guessed, so that their note
    does not name it as left unread. Two such columns: neither (:func:`_optional_timestamp` then reads none, and
    the warning names them); a column of Unix times, which numbers only a name tells apart, is named in that warning
    too, not taken."""
    from embedrec.config import ColumnsConfig

    col = cfg.columns.timestamp
    found = [str(c) for c in found]
    if taken is None or not (col == ColumnsConfig.timestamp or "timestamp" in or_default) or col not in wanted or \
            col in found or _close_column(col, found, wanted):
        return
    if len([c for c in found if _plain(c) in DEFAULT_ALIASES["timestamp"][0]]) > 1:  # 'ts' and 'datetime':
        return  # which is meant is not guessed (_require_columns names both)
    held = _times_columns(sample, [c for c in found if c not in wanted and not _NOT_EVENT_TIME.search(c.lower())])
    held = [(c, kind) for c, kind in held if kind != WRITTEN_DATES]  # (never taken unasked: only named)
    dated = [c for c, kind in held if kind == "dates"]
    if len(held) == 1 and dated:  # (beside a column of Unix times under a time's name: which is meant is not guessed)
        wanted[dated[0]] = wanted.pop(col)
        taken.append(f"{dated[0]!r} as 'timestamp' (its first rows are dates)")


# a column of dates named as a movie's or a user's, not a rating's time (a diff review: a movie's 'release_date'
# was taken as each rating's): never taken as the times unasked, still named in the warning
_NOT_EVENT_TIME = re.compile(r"(?:^|[_\W])(?:releas|birth|born|publi|premier|launch|air_?date|dob\b|founded|expir)")


def _iso_dates(sample, col: str) -> bool:
    """Whether the column ``col``'s first rows (``sample([col])``) are dates (:func:`times_kind`: ISO 8601 text,
    a Parquet datetime or date column; empty values aside, as history's rows rated below the floor have none);
    False where they cannot be read."""
    try:
        frame = sample([col]) if sample is not None else None
    except Exception:  # noqa: BLE001 - an aid: the file's own reading says what is wrong with it
        frame = None
    return frame is not None and col in frame and times_kind(frame[col]) == "dates"


def _words(sample, col: str) -> bool:
    """Whether the column ``col``'s first rows (``sample([col])``) hold words alone, no digit in any value given:
    no dates or times (a first-hour review: a 'meta', 'team' or 'tstamp' column of words, named close to
    'timestamp', was offered as the times and the table refused, where one without a close name is read without
    times). False where they cannot be read, or none is given."""
    try:
        frame = sample([col]) if sample is not None else None
    except Exception:  # noqa: BLE001 - an aid: the file's own reading says what is wrong with it
        frame = None
    if frame is None or col not in frame:
        return False
    given = [v for v in frame[col].tolist() if v is not None and not (isinstance(v, float) and np.isnan(v))]
    if any(not isinstance(v, str) for v in given):  # numbers, dates (a Parquet column's)
        return False
    text = [v.strip() for v in given if v.strip()]
    return bool(text) and not any(re.search(r"\d", v) for v in text)


def _optional_rating(found, wanted: dict, cfg: DataConfig, sample=None) -> str | bool:
    """Under data.repeats=sum, a file without the default 'rating' column, and none close to it, is a log of
    events: each row counts 1 and a pair's rows sum into its count (a first-hour review: such a click log was
    refused, offering its 'timestamp' column as the rating): 'sum'. Otherwise a file whose every column is read
    as the user, the movie or the time (no column left that could be the ratings: 'user_id,movie_id') is one of
    interactions, each row rating 1, as implicit and LensKit take such a file (a review: the docs called the
    rating column optional, and it was required): 'ones'. False where neither (the rating column is required). A
    column holding a split made elsewhere (``sample(cols)``: :func:`is_split_column`) counts as read here: it is
    no rating (said in a warning by :func:`_require_columns`; an own-data review: 'user_id,item_id,split,timestamp'
    was refused for want of a rating)."""
    from embedrec.config import ColumnsConfig

    col = cfg.columns.rating
    found = [str(c) for c in found]
    if col != ColumnsConfig.rating or col not in wanted or col in found or _close_column(col, found, wanted) or \
            cfg.event_weights is not None:  # weights name a column of events: it must be there
        return False
    if cfg.repeats == "sum":
        del wanted[col]
        return "sum"
    unread = [c for c in found if c not in wanted]
    if found and (not unread or sample is not None and len(unread) == 1 and split_column(sample, unread)):
        del wanted[col]
        return "events" if cfg.repeats == "auto" else "ones"
    return False


def _require_columns(found, wanted: dict, label: str, no_times: bool | str = False,
                     matched: list[str] = (), counted: str | bool = False, sample=None,
                     unrated: str | None = None, header_is_data=None, id_type: str = "str") -> list[str]:
    """The notes of how the columns were read, once every column ``wanted`` names is ``found``; else one
    DataError naming the missing ones and the columns that could be them (a rating: only a column of numbers,
    from ``sample(columns)``, the first rows of those columns; a column of event types is told how to weigh
    them, data.event_weights). ``unrated``: what a row counts as without a rating column, where the reader is not
    ingest (tables.read_generic's; a first-hour review: update-users, whose rows without a rating are likes at the
    scale's top and whose data.repeats is the run's, was told ingest's 'every row then counts as rating 1').
    ``header_is_data(names)``: whether the header line's names are data where they do not look like it by shape
    (update-users: one is an id the run knows, 'cust_00002'), so the error ends with data.header=false's hint too.
    ``id_type``: data.id_type; under 'int', the error names data.id_type=auto too where the id columns found (or
    offered) hold text, which would be refused next (:func:`_text_ids`)."""
    found = [str(c) for c in found]
    keys = {"user_id": "user", "movie_id": "movie", "rating": "rating", "timestamp": "timestamp"}
    missing = [(col, role, _close_column(col, found, wanted)) for col, role in wanted.items() if col not in found]
    looks_like_data = any(is_number_text(n) or re.match(r"\d{4}-\d\d-\d\d", n) for n in found) or \
        (header_is_data is not None and bool(missing) and header_is_data(found))
    tail = "; if the file has no header line, read it with «--set data.header=false» (columns in the order " \
        "user, movie, rating, timestamp)" if looks_like_data else ""
    if missing and id_type == "int" and not looks_like_data:
        ids = [c for c, role in wanted.items() if role in ("user_id", "movie_id") and c in found]
        ids += [close[0] for _, role, close in missing if role in ("user_id", "movie_id") and close]
        if any(role in ("user_id", "movie_id") and not close for _, role, close in missing):  # NAME: one of these
            ids += [c for c in found if c not in wanted and c not in ids]
        tail = _text_ids(sample, ids) + tail
    if len(missing) > 1:  # every missing column in one line, not one run each
        named = [f"the {role.replace('_id', '')} ('{col}')" for col, role, _ in missing]
        sets = []  # each a close column's whole name, else NAME (one too long to write whole too)
        for _, role, close in missing:
            key = f"data.columns.{keys[role]}"
            sets.append((close and column_set(key, _typed(close[0], found))) or (f"{key}=NAME",) * 2)
        names = "" if not any(c.endswith("=NAME") for c, _ in sets) else \
            f", each NAME one of: {shorten(', '.join(_typed(c, found) for c in found), 200)}"
        if ("data.columns.rating=NAME",) * 2 in sets:
            names += (" («data.columns.rating=null|{'data.columns.rating': None}» if the file has no ratings: every row "
                      f"then counts as {unrated or 'rating 1'})")
        raise DataError(f"{label}: no columns for {', '.join(named[:-1])} and {named[-1]}; name them with "
                        f"{_set_said(sets)}{names}{tail}")
    for col, role, close in missing:
        key = f"data.columns.{keys[role]}"
        free = [c for c in found if c not in wanted] or found  # not the columns read as the others already (a
        # first-hour pass: 'one of: user, item, liked' where user and item were the user and the movie)
        if role in ("user_id", "movie_id"):  # nor, for an id, one named as a time ('event_time_ms': an own-data
            free = [c for c in free if not _TIME_NAME.search(str(c).lower())] or free  # review)
        events = ""
        if role == "rating" and not close and sample is not None:
            # only a column of numbers can be the ratings (a first-hour review: 'one of: event', then 'view' is
            # not a number); a column of a few text values is event types, told how to weigh them
            numbers, texts = _column_kinds(sample, [c for c in found if c not in wanted])
            free = numbers
            if texts:
                name, values = next(iter(texts.items()))
                weights, kept, left = weights_mapping((v, i + 1) for i, v in enumerate(values))
                typed = _typed(name, found)
                column = column_set(key, typed)
                events = (f"; its column {shorten(name, 60)!r} holds event types "
                          f"({shorten(', '.join(values[:6]), 80)}{', ...' if len(values) > 6 else ''}): to weigh them "
                          "(your weights; a pair's events summed), ")
                mapping = (sh_quote(f"data.event_weights={{{weights}}}"), f"data.event_weights={kept!r}")
                if column is None:  # the weights alone, where they fit
                    events += f"{_too_long(key, typed)}, with a weight for each in data.event_weights"
                    events += f" ({_set_said([mapping])}{left_out(left, len(values))})" if kept else ""
                elif kept:
                    events += _set_said([column, mapping]) + left_out(left, len(values))
                else:
                    events += (f"{_set_said([column])} with a weight for each in data.event_weights (the words are too "
                               "long to write here)")
        column = column_set(key, _typed(close[0], found)) if close else None
        hint = f"; did you mean {_set_said([column])}" if column else \
            f"; did you mean to {_too_long(key, _typed(close[0], found))}" if close else \
            f"; set {key} to one of: {shorten(', '.join(_typed(str(c), found) for c in free), 200)}" if free else \
            "; no other column holds numbers"
        if role == "rating" and not close and sample is not None:
            split = split_column(sample, [c for c in found if c not in wanted])
            events += "; " + split_said(split, "column") if split else ""
        hint += events
        if role in ("timestamp", "rating"):
            hint += (f"{':' if hint.endswith('numbers') else ', or'} «--set {key}=null|{{'{key}': None}}» if the file "
                     f"has no {role}s"
                     + ("" if role != "rating" else f" (every row then counts as {unrated})" if unrated else
                        " (every row then counts as rating 1; for a play or click log, «--set data.repeats=sum|"
                        "{'data.repeats': 'sum'}» alone counts each pair's rows)"))
        raise DataError(f"{label}: no column '{col}' for the {role.replace('_id', '')} "
                        f"({key}){hint}{'?' if close else ''}{tail}")
    # the notes: said (RawData.notes) once the rows are read and checked, as an error would else be a second line
    notes = []
    unread = [c for c in found if c not in wanted]
    split = split_column(sample, unread) if unread and sample is not None else None
    if split:  # a warning: the file's split is not the one the dataset gets (an own-data review)
        notes.append(WarnedNote(f"{label}: {split_said(split)}"))
    if matched:
        notes.append(f"{label}: reading column{'s' if len(matched) > 1 else ''} {', '.join(matched)}")
    if counted == "sum":
        notes.append(f"{label}: no 'rating' column: each row counts 1, and data.repeats=sum sums a pair's rows "
                     "into its count («--set data.columns.rating=NAME» names another column)")
    elif counted == "events":
        notes.append(f"{label}: no 'rating' column: a log of events, each row counting 1 and a pair's rows summed "
                     "into its count (data.repeats auto; «--set data.repeats=latest» takes each pair once)")
    elif counted:
        notes.append(f"{label}: no 'rating' column: each row is an interaction, rating 1 (for the default ranking "
                     "model; «--set data.repeats=sum» counts a pair's repeated rows)")
    if no_times:
        # two columns of the timestamp's other names ('ts' and 'datetime'): neither taken, and both named (a review:
        # the times were dropped with the same note as a file that has none)
        both = [c for c in found if _plain(c) in DEFAULT_ALIASES["timestamp"][0]]
        which = f" ({' and '.join(repr(c) for c in both)} could each be it: one is not guessed)" if len(both) > 1 else ""
        held = _times_columns(sample, [c for c in found if c not in wanted]) if not which and sample else []
        if held:  # a column of dates or Unix times the names did not tell (a first-hour review: 'watched_at')
            (col, kind), more = held[0], [c for c, _ in held[1:4]]
            also = f" (and {', '.join(repr(c) for c in more)} {'hold' if len(more) > 1 else 'holds'} times too)" \
                if more else ""
            # a warning, not a note: the file's times go unread (a review of session 50: -q hid it)
            key, typed = "data.columns.timestamp", _typed(col, found)
            column = column_set(key, typed)
            sets = [column]
            if kind == WRITTEN_DATES and column:  # both settings it takes (a diff review: the column alone then
                sets.append(("data.timestamp_format=%d/%m/%Y", "data.timestamp_format='%d/%m/%Y'"))  # failed)
            told = _set_said(sets) if column else _too_long(key, typed)
            also_us = " (or %m/%d/%Y where the month comes first)" if len(sets) > 1 else ""
            notes.append(WarnedNote(f"{label}: no 'timestamp' column: ratings without times (a time-based split and "
                                    f"the recency weight need them); column {shorten(col, 60)!r} holds {kind}{also}: "
                                    f"{told}{also_us} to read them"))
        else:
            passed = f" (its column {shorten(no_times, 60)!r}, named close to it, holds words, not times)" \
                if isinstance(no_times, str) else ""
            notes.append(f"{label}: no 'timestamp' column{which}{passed}: ratings without times (a time-based split "
                         "and the recency weight need them; «--set data.columns.timestamp=NAME» names another "
                         "column)")
    return notes


def _text_ids(sample, cols: list[str]) -> str:
    """'; where the ids are text (...), add data.id_type=auto', where a column of ``cols`` (the id columns found or
    offered) holds an id that is no integer in its first rows (``sample(cols)``), which data.id_type=int would
    refuse once the columns are named (a first-hour review: a shop's CSV took a try for its columns, then another
    for its ids); '' where none does, or they cannot be read."""
    cols = cols[:SAMPLED_COLUMNS_MAX]  # (the first ones: a header of 120,000 columns, a red team)
    try:
        frame = sample(cols) if cols and sample is not None else None
    except Exception:  # noqa: BLE001 - an aid: the file's own reading says what is wrong with it
        frame = None
    for c in cols if frame is not None else ():
        values = frame[c] if c in frame else None
        if values is None or pd.api.types.is_numeric_dtype(values):
            continue
        text = next((v.strip() for v in values.tolist() if isinstance(v, str) and v.strip()  # a word, not a
                     and not is_number_text(v) and not _ISO_START.match(v.strip())), None)  # number or a date
        if text is not None:
            return (f"; where the ids are text (column {shorten(c, 60)!r} holds {shorten(text, 64)!r}), add "
                    "«--set data.id_type=auto|data.id_type='auto'» too")
    return ""


# the Unix times a column of numbers must hold, in seconds, milliseconds, microseconds or nanoseconds (as
# data.timestamp_unit reads them), for a file read without times to name it as its likely times: 1990-01-01 to
# 2100-01-01, ranges of the four units that do not overlap (a year, a count, an id or a rating is outside them)
PLAUSIBLE_SECONDS = (631_152_000, 4_102_444_800)
_ISO_START = re.compile(r"\d{4}-\d\d-\d\d")


def times_kind(values: pd.Series) -> str | None:
    """'dates' where every value of ``values`` (a column's first rows; text as a text table's sample reads it, or
    a Parquet column as typed) is a date: a datetime or date column, or ISO 8601 text ('2024-03-01T20:15:00Z');
    'Unix times' where every one is a number a Unix time of 1990 to 2100 is in seconds, milliseconds,
    microseconds or nanoseconds; else None (a column of no value too). For a file read without times, the column
    that could be them (a first-hour review: a play log's 'watched_at' went unnamed). (Here, not in data/times.py,
    which reads a timestamp column once it is named: the two modules sit side by side.)"""
    s = values.dropna()
    if pd.api.types.is_bool_dtype(s):
        return None
    if pd.api.types.is_datetime64_any_dtype(s):
        return "dates" if len(s) else None
    if not pd.api.types.is_numeric_dtype(s):
        import datetime

        if len(s) and all(isinstance(v, datetime.date) for v in s.tolist()):  # a Parquet date32 column
            return "dates"
        text = s.astype(str).str.strip()
        text = text[text != ""]
        if not len(text):
            return None
        if not text.map(is_number_text).all():
            if text.map(lambda v: bool(_DAY_MONTH.fullmatch(v))).all():  # 05/03/2024: which is the day is not guessed
                return WRITTEN_DATES  # (named in the warning, never taken unasked; a first-hour review's 'Date')
            iso = text.map(lambda v: bool(_ISO_START.match(v))).to_numpy().copy()
            iso[iso] = pd.to_datetime(text[iso], utc=True, errors="coerce", format="ISO8601").notna().to_numpy()
            # all, or nearly all: a few written otherwise are the reading's to name by their lines (a first-hour
            # review: one '02/03/2024' among ISO dates dropped the column with a note that it had none)
            return "dates" if iso.all() or iso.sum() >= 3 and iso.mean() >= MOSTLY_DATES else None
        s = pd.to_numeric(text, errors="coerce")
    v = np.asarray(s, dtype=np.float64)
    if not v.size or not np.isfinite(v).all():
        return None
    low, high = PLAUSIBLE_SECONDS
    a = np.abs(v)
    return "Unix times" if np.any([(a >= low * t) & (a < high * t) for t in (1, 10**3, 10**6, 10**9)],
                                  axis=0).all() and (v > 0).all() else None


# dates written with the day or the month first (05/03/2024, 5.3.24, 2024/03/05 aside: ISO's order with slashes is
# read by data.timestamp_format too), a time of day after them allowed
_DAY_MONTH = re.compile(r"\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?")
WRITTEN_DATES = "dates written day or month first (05/03/2024)"  # (which comes first: data.timestamp_format)


def _times_columns(sample, cols: list[str]) -> list[tuple[str, str]]:
    """Of ``cols`` (the columns read as nothing), each whose first rows, ``sample(cols)``, are dates or Unix times
    (:func:`times_kind`), with which; none where they cannot be read. Only SAMPLED_COLUMNS_MAX of them are looked
    at, those named as times first (_TIME_NAME), then the others in the file's order (a red team: each of a header's
    120,000 other columns was read and looked at, 9.3 GB and more than 300 s)."""
    named = [c for c in cols if _TIME_NAME.search(str(c).lower())]
    few = set(named[:SAMPLED_COLUMNS_MAX])
    few.update([c for c in cols if c not in few][:SAMPLED_COLUMNS_MAX - len(few)])
    cols = [c for c in cols if c in few]  # (in the file's order: the first is named)
    try:
        frame = sample(cols) if cols else None
    except Exception:  # noqa: BLE001 - a note's aid: the file's own reading says what is wrong with it
        frame = None
    if frame is None:
        return []
    # plain numbers are times only under a name that says so (a review: an 'order_id' of 10-digit numbers was
    # named as Unix times); dates are told by their text
    return [(c, kind) for c in cols if (kind := times_kind(frame[c])) is not None
            and (kind == "dates" or _TIME_NAME.search(str(c).lower()))]


# a column name that may hold times: 'time', 'timestamp', 'date', 'epoch', 'ts', 'watched_at', 'created', ...; a
# unit after it too ('played_at_ms', 'ts_ms': an own-data review found their times dropped with an info line)
_TIME_NAME = re.compile(r"time|date|stamp|epoch|when|created|updated|"
                        r"(?:^|[_\W])(?:ts|at|on|day)(?:[_\W]?(?:s|ms|us|ns|secs?|seconds|millis))?$")


META = ("title", "genres")  # a ratings file's columns read as its movies' titles and genres, without data.movies
SAMPLE_ROWS = 1000  # the rows a missing rating's message looks at to tell columns of numbers from text
SAMPLED_COLUMNS_MAX = 100  # the columns of a table that a message or a note reads a sample of, to say what they hold


def _sample_columns(src, sep: str, encoding: str, cols: list[str]) -> pd.DataFrame | None:
    """The first SAMPLE_ROWS rows of a text table's columns ``cols``, as text (None where they cannot be read:
    the message then names every column)."""
    try:
        buf = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src
        return pd.read_csv(buf, sep=sep, usecols=cols, dtype=str, keep_default_na=False, nrows=SAMPLE_ROWS,
                           encoding=encoding, engine="c" if len(sep) == 1 else "python")
    except Exception:  # noqa: BLE001 - an error path's aid: the reader reports what is wrong with the file
        return None


def _column_kinds(sample, cols: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Of ``cols`` (its first SAMPLED_COLUMNS_MAX), (the columns of numbers, {a column of text of at most 20
    values: its values, most frequent first}) in the rows ``sample(cols)`` gives; every column as one of numbers
    where it gives none. A column of dates (:func:`times_kind`) is neither (a review of session 50: a few days' ISO
    dates were offered as event types to weigh)."""
    import collections

    cols = cols[:SAMPLED_COLUMNS_MAX]  # (the first ones: a header of 120,000 columns, a red team)
    try:
        frame = sample(cols) if cols else None
    except Exception:  # noqa: BLE001 - an error path's aid (a Parquet file's columns named by numbers): every one
        frame = None
    if frame is None:
        return cols, {}
    numbers, texts = [], {}
    for c in cols:
        s = frame[c]
        if pd.api.types.is_bool_dtype(s):
            continue
        if pd.api.types.is_numeric_dtype(s):
            numbers.append(c)
            continue
        text = [str(v).strip() for v in s.tolist() if v is not None and not (isinstance(v, float) and np.isnan(v))]
        text = [v for v in text if v]
        if text and pd.to_numeric(pd.Series(text), errors="coerce").notna().all():
            numbers.append(c)
        elif text and times_kind(pd.Series(text)) != "dates" and not is_split_column(text, str(c)):  # (a split made
            # elsewhere: no event types, a own-data review found 'train: 1, test: 2' offered as weights)
            counts = collections.Counter(text)
            if len(counts) <= 20:
                texts[c] = [v for v, _ in counts.most_common()]
    return numbers, texts


# the values of a column that holds a split made elsewhere (lower case): a file's 'split' column, which ingest
# does not read (it draws its own split); said, never offered as event types
SPLIT_WORDS = frozenset({"train", "training", "valid", "validation", "val", "dev", "test", "testing", "eval"})


def is_split_column(values, name: str = "") -> bool:
    """Whether a column's (sampled, non-empty) text ``values`` are a split's labels: train and test (or valid)
    alone, or any of them under a split's name ('split', 'set', 'fold', 'partition': a file sorted by its split
    shows one label alone in its first rows; diff reviews)."""
    got = {str(v).strip().lower() for v in values}
    if not got or not got <= SPLIT_WORDS:
        return False
    named = bool(re.fullmatch(r"(?:data_?)?(?:split|set|subset|fold|partition|part)(?:_?name)?", name.strip().lower()))
    return named or bool(got & {"train", "training"}) and len(got) > 1  # (named: its first rows may be all 'test')


def split_column(sample, cols: list[str]) -> tuple[str, str] | None:
    """(the column, its values as 'test, train') of the first of ``cols`` (the columns read as nothing, their first
    rows ``sample(cols)``) that holds a split made elsewhere (:func:`is_split_column`), else None."""
    cols = cols[:SAMPLED_COLUMNS_MAX]
    try:
        frame = sample(cols) if cols and sample is not None else None
    except Exception:  # noqa: BLE001 - an aid: the file's own reading says what is wrong with it
        frame = None
    if frame is None:
        return None
    for c in cols:
        if c in frame and not pd.api.types.is_numeric_dtype(frame[c]):
            text = [str(v).strip() for v in frame[c].tolist() if isinstance(v, str) and v.strip()]
            if is_split_column(text, str(c)):
                return str(c), ", ".join(sorted({v.lower() for v in text}))
    return None


def split_said(found: tuple[str, str], lead: str = "its column") -> str:
    """What a column holding a split made elsewhere (:func:`split_column`'s ``found``) is told: 'its column 'split'
    holds a split made elsewhere (test, train), which ingest does not read: ...', with how to score on it."""
    return (f"{lead} {shorten(found[0], 60)!r} holds a split made elsewhere ({found[1]}), which ingest does not "
            "read as a column: it draws its own split (split.*); to hold your own rows out, write each part to its "
            "own file and ingest the training rows with «--set split.method=given --set data.test_source=TEST_FILE|"
            "er.ingest(train, cfg, test=test)» (docs/commands.md, 'Details: splits')")


# a rating column's words read as a dislike (lower case, spaces, '_' and '-' left out): weighed -1 by the recipe
# events_recipe offers, which keeps each pair's latest event (a summed log refuses a weight of 0 or below)
_DISLIKES = frozenset({"dislike", "disliked", "dislikes", "no", "n", "0", "false", "f", "bad", "negative", "neg",
                       "down", "thumbsdown", "thumbdown", "hate", "hated", "unlike", "unliked", "nope", "reject",
                       "rejected", "\N{THUMBS DOWN SIGN}"})
EVENT_VALUES_MAX = 20  # the distinct values a rating column of words may hold to be offered as event types


_WITH_UNIT = r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)\s*(?:%|[^\W\d_]+\.?)"  # '5 stars', '4.5/5' aside, '80%', '3 pts.'


def with_unit(values: pd.Series) -> np.ndarray:
    """Which of ``values`` (text) are a number written with a unit after it ('5 stars', '80%', '3 pts'): ratings
    to write as numbers alone (an own-data review: '5 stars' was offered as an event type)."""
    return values.astype(str).str.strip().str.fullmatch(_WITH_UNIT).to_numpy(dtype=bool)


def events_recipe(values: pd.Series) -> str | None:
    """For a rating column read as text that holds words (``values``, every row read): where it holds at most
    EVENT_VALUES_MAX distinct values, most of its rows words, the settings that read it as events weighed on the
    first try (a review: 'like'/'dislike' was 'not a number', then its -1 refused as a summed log's weight), said
    after 'it holds': the words found, most frequent first, and data.event_weights built from them. With a word of
    dislike among others (dislike, no, false, bad, ...) a like weighs 1 and a dislike -1, with data.repeats=latest
    (each pair's latest event; its dislikes kept apart by data.min_rating: auto); else 1, 2, 3, ... in order of
    frequency, the user's to change, a pair's events summed. None where it is no such column: more distinct values
    than event types have, mostly numbers, or a word on one row alone (a first-hour review: update-users' since-file
    whose only row read 'x' was offered data.event_weights={x: 1} first; one cell of a word is a typo, as a stray
    word among numbers is, and the caller's advice is then to fix or remove that line)."""
    text = values.dropna().astype(str).str.strip()
    text = text[text != ""]
    counts = text.value_counts()
    if not len(counts) or len(counts) > EVENT_VALUES_MAX:
        return None
    if with_unit(counts.index.to_series()).all():  # '5 stars', '80%': numbers with a unit, not event types
        return None
    numbers = pd.to_numeric(pd.Series(counts.index), errors="coerce").notna().to_numpy()
    words = int(counts[~numbers].sum())
    if words * 2 < counts.sum() or words == 1:  # mostly numbers, or one cell: a stray word, to fix
        return None
    found = [str(v) for v in counts.index]

    def dislike(v: str) -> bool:
        return v in ("0", "-1") or re.sub(r"[\s_-]+", "", v.lower()) in _DISLIKES

    down = [v for v in found if dislike(v)]
    found = [v for v in found if v not in down] + down  # the likes first: {like: 1, dislike: -1}
    shown = f"{shorten(', '.join(found[:6]), 80)}{', ...' if len(found) > 6 else ''}"
    words = f"{len(found)} word{'s' if len(found) > 1 else ''} ({shown})"
    if down and len(down) < len(found):
        mapping, weights, left = weights_mapping((v, -1 if v in down else 1) for v in found)
        if not weights:
            return (f"{words}, likes and dislikes, too long to write here: to read a like as 1 and a dislike as -1 "
                    "(each pair's latest kept), give each its weight in data.event_weights, with data.repeats latest")
        cli = (f"--set {sh_quote(f'data.event_weights={{{mapping}}}')} --set data.repeats=latest")
        library = f"data.event_weights={weights!r}, data.repeats='latest'"
        return (f"{words}, likes and dislikes: to read a like as 1 and a dislike as -1 (each pair's latest kept), "
                f"{marked(cli, library)}{left_out(left, len(found))}")
    mapping, weights, left = weights_mapping((v, i + 1) for i, v in enumerate(found))
    if not weights:
        return (f"{words}, event types too long to write here: to weigh them (your weights; a pair's events "
                "summed), give each its weight in data.event_weights")
    cli = f"--set {sh_quote(f'data.event_weights={{{mapping}}}')}"
    return (f"{words}, event types: to weigh them (your weights; a pair's events summed), "
            f"{marked(cli, f'data.event_weights={weights!r}')}{left_out(left, len(found))}")


def _yaml_key(text: str) -> str:
    """``text`` as a key of a YAML flow mapping: plain where YAML reads it back as that text, else in double quotes
    (a message's --set wraps the mapping in single quotes for the shell), a control or bidi character in it
    (errors.UNSAFE_CHARS) written as YAML's '\\uXXXX', which reads it back, never sent raw to the terminal."""
    plain = re.fullmatch(r"[A-Za-z_][\w.-]*", text) and text.lower() not in (
        "yes", "no", "on", "off", "true", "false", "null", "y", "n")
    if plain:
        return text
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + UNSAFE_CHARS.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted) + '"'


WEIGHTS_MAX = 300  # characters of a data.event_weights mapping a message writes, each of its words whole


def weights_mapping(pairs) -> tuple[str, dict, int]:
    """(the text of a YAML flow mapping 'word: weight, ...', the pairs it writes as a dict, how many it leaves out)
    of ``pairs`` ((word, weight), in order): each word written whole (:func:`_yaml_key`), in order, while the text
    stays within WEIGHTS_MAX characters; a word that does not fit is left out and counted, for the message to say
    (session 52's red team: a word of 1,000 characters was cut with '[...]' inside the --set a message offered,
    which could then not be pasted)."""
    items, kept, left, used = [], {}, 0, 0
    for word, weight in pairs:
        item = f"{_yaml_key(word)}: {weight}"
        if used + len(item) > WEIGHTS_MAX:
            left += 1
            continue
        items.append(item)
        kept[word] = weight
        used += len(item) + 2
    return ", ".join(items), kept, left


def left_out(left: int, total: int) -> str:
    """' (2 of its 5 words left out, ...)': what :func:`weights_mapping` left out of a mapping, said after it."""
    return f" ({left:,} of its {total:,} words left out, too long to write here: add each with its weight)" \
        if left else ""


def _movie_columns(found, wanted: dict, cfg: DataConfig, label: str) -> list[str]:
    """Without a movies file (data.movies), the ratings file's title and genres columns (data.columns.title and
    .genres, or a spelling of them: 'Title') are read as its movies' (a first-hour review: a 'title' column was
    ignored without a word); they join ``wanted`` as 'title' and 'genres'. With one, a title column here is
    said not to be read. Returns the notes."""
    names = [str(c) for c in found]
    if cfg.movies:
        title = _plain(cfg.columns.title)
        col = next((c for c in names if c not in wanted and _plain(c) == title), None)
        return [f"{label}: its column '{col}' is not read: the movies file (data.movies) gives the titles"] if col \
            else []
    plain = {c: _plain(c) for c in names}
    for role in META:
        spelt = _plain(getattr(cfg.columns, role))
        hits = [c for c in names if c not in wanted and plain[c] == spelt]
        if len(hits) == 1:
            wanted[hits[0]] = role
    return []
