"""What a run's manifest records of ``embedrec update-users`` (its ``updates`` records, run_layout.UPDATES; written
by user_update.py): the records (``updates_of``) and their check as a run is opened (``check_updates``), what they
add up to and say (``updates_summary``, ``updates_said``), the users the run was trained on before those added
(``trained_users``), the trained model an updated one is built on (``trained_folder``, which publishing keeps), and
what a damaged or replaced updated model loses: the advice to keep the updates (``updates_fix``, in ``run_fix``'s)
and the warning of a train that drops them (``warn_updates_dropped``, said by ``publish``). numpy-free: serving
imports this.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from embedrec.errors import ArtifactError, command, marked, sh_quote, shorten
from embedrec.fsutil.files import probe_json, read_json
from embedrec.run_layout import (
    MANIFEST,
    MODEL_FOLDER,
    MOVIE_IDS,
    SOLVED_AS_NEW,
    UPDATE_PAIRS,
    UPDATED_USERS,
    UPDATES,
    USER_IDS,
    run_of,
)


def updates_of(manifest: dict) -> list[dict]:
    """The ``updates`` records of a run's manifest (oldest first; [] where it has none)."""
    got = manifest.get(UPDATES)
    return [u for u in got if isinstance(u, dict)] if isinstance(got, list) else []


def update_sources(manifest: dict) -> list[str] | None:
    """The ratings file each ``updates`` record names (its ``ratings.source``; '-': standard input), oldest first;
    None where a record's does not read as update-users writes it. For messages alone, which then leave the files
    out (a review: an edited record's ``"ratings": "x"`` made every publish on the run an internal error, where no
    reader of the run looks at it)."""
    files = [u.get("ratings") for u in updates_of(manifest)]
    if not all(isinstance(f, dict) and isinstance(f.get("source"), str) for f in files):
        return None
    return [f["source"] for f in files]


def _count(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


# a record's counts (user_update.update_users writes them); users_in_all is null where no earlier update kept
# run_layout.UPDATED_USERS; users_as_new (the dataset's users without a training rating it solved as new ones:
# run_layout.SOLVED_AS_NEW) is absent from a record written before it was counted; so are users_unchanged (known
# users whose every pair the run held already) and movies_added, n_movies, movies_resolved, movies_fitted (update-users
# --new-movies': movie_update)
_RECORD_COUNTS = ("users", "users_added", "users_named", "pairs", "pairs_solved", "n_users", "users_in_all",
                  "users_as_new", "users_unchanged", "movies_added", "n_movies", "movies_resolved", "movies_fitted")


def check_updates(manifest: dict, where: Path, fix: str) -> None:
    """Refuse ``updates`` records that no update-users writes, naming the key, as ``check_fields`` refuses a manifest's
    other fields: a count that is not a whole number >= 0, or records whose ``users_added`` do not add up to the
    users after the dataset's (``n_users`` less them is ``dataset.counts.users``; each record's ``n_users`` the users
    after it), or whose ``movies_added`` do not so add up to the movies after the dataset's, and an
    ``updated_users.npy`` or ``solved_as_new.npy`` listed without a record. The readers take which users were added
    (:func:`trained_users`: rows from it on get the new users' prior) from these records (a red team: a re-sealed
    ``updates=[]`` or ``users_added=2000`` made the added users trained ones, their prior lost, and verify said ok).
    ``where``: the manifest, for the message."""
    def bad(key: str, said: str) -> ArtifactError:
        return ArtifactError(f"run manifest '{where}': {key} {said}; the file was edited or damaged: {fix}")

    got = updates_of(manifest)
    for i, record in enumerate(got):
        for key in _RECORD_COUNTS:
            v = record.get(key)
            if key in record and _count(v) is None and not (v is None and key == "users_in_all"):
                raise bad(f"'{UPDATES}[{i}].{key}'", f"is {shorten(json.dumps(v, default=str), 40)}, not a whole "
                                                     "number >= 0")
    for name in (UPDATED_USERS, SOLVED_AS_NEW):
        if not got and f"{name}.npy" in (manifest.get("checksums") or {}):
            raise bad(f"'{UPDATES}'", f"records no update, though it lists {name}.npy, which update-users writes")
    if not got:
        return
    for kind in ("users", "movies"):  # (the movies update-users --new-movies added: trained_movies reads them)
        _check_added(manifest, got, kind, bad)


def _check_added(manifest: dict, got: list, kind: str, bad) -> None:
    """:func:`check_updates`' count of the ``kind`` ('users', 'movies') the records added: their ``{kind}_added``
    adding up to the run's ``n_{kind}`` less its dataset's (``dataset.counts.{kind}``), each record's ``n_{kind}``
    those after it (the movies only where some were added). A trained model's n_users and n_movies are checked
    against its tables (check_fields)."""
    n, added = manifest.get(f"n_{kind}"), [record.get(f"{kind}_added") or 0 for record in got]
    if _count(n) is None or kind == "movies" and not any(added) and not any(r.get("movies_fitted") for r in got):
        return  # (records before movies were added count none)
    base = (manifest.get("dataset") or {}).get("counts", {})
    base = _count(base.get(kind)) if isinstance(base, dict) else None
    if sum(added) > n or base is not None and base + sum(added) != n:
        said = f"add up to {sum(added):,} {kind}, " + (
            f"where the run's {n:,} (n_{kind}) less its dataset's {base:,} (dataset.counts.{kind}) are {n - base:,}"
            if base is not None else f"more than the run's {n:,} (n_{kind})")
        raise bad(f"'{UPDATES}[*].{kind}_added'", said)
    for i, record in enumerate(got):  # the dataset's movies without a training rating an update solved
        if kind == "movies" and (_count(record.get("movies_fitted")) or 0) > n - sum(added):
            raise bad(f"'{UPDATES}[{i}].movies_fitted'", f"is {record['movies_fitted']:,}, more than the "
                                                         f"{n - sum(added):,} movies of the run's dataset")
    after = n - sum(added)
    for i, (record, a) in enumerate(zip(got, added)):
        if kind == "movies" and (_count(record.get("movies_resolved")) or 0) > after - (n - sum(added)):
            raise bad(f"'{UPDATES}[{i}].movies_resolved'", f"is {record['movies_resolved']:,}, more than the "
                                                             f"{after - (n - sum(added)):,} movies earlier updates added")
        after += a
        if f"n_{kind}" in record and record[f"n_{kind}"] != after:
            raise bad(f"'{UPDATES}[{i}].n_{kind}'", f"is {record[f'n_{kind}']:,}, where the {kind} before it and its "
                                                     f"{kind}_added make {after:,}")


def updates_summary(manifest: dict) -> dict | None:
    """What a run's ``updates`` records add up to: {"updates": how many, "users": the trained users they re-solved,
    "users_added", "ratings": the new ratings in their solves, "distinct": whether ``users`` counts distinct users
    (the last record's ``users_in_all`` less those added; else the records' re-solves summed, a user re-solved
    twice counted twice), "at": the last one's time, "movies_added": the movies update-users --new-movies added};
    None where there are none."""
    got = updates_of(manifest)
    if not got:
        return None

    def total(key: str) -> int:
        return sum(_count(u.get(key)) or 0 for u in got)

    added, in_all = total("users_added"), _count(got[-1].get("users_in_all"))
    distinct = in_all is not None and in_all >= added
    return {"updates": len(got), "users": in_all - added if distinct else total("users"), "users_added": added,
            "ratings": total("pairs_solved"), "distinct": distinct, "at": got[-1].get("at", "?"),
            "movies_added": total("movies_added")}


def updates_said(manifest: dict) -> str | None:
    """What a run's manifest records of update-users, in words ('update-users re-solved 100 of its users and added
    20 new ones with 1,000 ratings made since training, at TIME'; several updates: the distinct users they
    updated, where the records count them, else the re-solves summed, said as such); None where it has none."""
    got = updates_summary(manifest)
    if got is None:
        return None
    users, added, pairs = got["users"], got["users_added"], got["ratings"]
    movies = got["movies_added"]  # (update-users --new-movies': said after the users, where any)
    ratings = f"{pairs:,} rating{'' if pairs == 1 else 's'}" + (
        f" (adding {movies:,} new movie{'' if movies == 1 else 's'})" if movies else "")
    new = f"{added:,} new user{'' if added == 1 else 's'}"
    if got["updates"] == 1:
        did = f"re-solved {users:,} of its users" if users or not added else ""
        did += (" and added " if did else "added ") + new if added else ""
        return f"update-users {did} with {ratings} made since training, at {got['at']}"
    if got["distinct"]:
        whom = f"{users + added:,} user{'' if users + added == 1 else 's'} in all" + \
            (f" ({added:,} of them added)" if added else "")
        return (f"update-users updated the run with ratings made since training {got['updates']} times, {whom}, "
                f"with {ratings}, the last at {got['at']}")
    return (f"update-users re-solved its users with ratings made since training {got['updates']} times, {users:,} "
            f"user re-solve{'' if users == 1 else 's'}{f' and {new} added' if added else ''} and {ratings} in all, "
            f"the last at {got['at']}")


def trained_users(manifest: dict) -> int:
    """The users the run was trained on (its dataset's): n_users less those update-users added (rows n.. of the
    user tables, after the trained ones); what a reader of the run's dataset compares with its count."""
    n = manifest["n_users"]
    added = sum(_count(u.get("users_added")) or 0 for u in updates_of(manifest))
    return n - added if 0 <= added <= n else n


def trained_movies(manifest: dict) -> int:
    """The movies the run was trained on (its dataset's): n_movies less those update-users --new-movies added (rows
    n.. of the movie tables, after the trained ones; movie_update.py); what a reader of the run's dataset compares
    with its count, and the movies evaluate ranks."""
    n = manifest["n_movies"]
    added = sum(_count(u.get("movies_added")) or 0 for u in updates_of(manifest))
    return n - added if 0 <= added <= n else n


def users_as_new(manifest: dict) -> int:
    """How many of the dataset's users without a training rating the run's updates solved as new users (their
    records' ``users_as_new``; run_layout.SOLVED_AS_NEW holds their rows)."""
    return sum(_count(u.get("users_as_new")) or 0 for u in updates_of(manifest))


def trained_folder(manifest: dict) -> str | None:
    """The model folder, beside this one, that an updated model is built on: the trained model the first
    ``updates`` record replaced (its ``before``); None where the manifest records no update (a trained model)."""
    got = updates_of(manifest)
    name = got[0].get("before") if got else None
    return name if isinstance(name, str) and MODEL_FOLDER.fullmatch(name) else None


def updates_fix(p: Path) -> str:
    """Where the damaged model (``p``: a model folder, or a run whose ``current`` names one) is one update-users
    re-solved, what a train would lose and how to keep it: the trained model it was built on, kept beside it
    (:func:`trained_folder`), served again and the update files run again in order; '' otherwise (a review: the
    advice to train again dropped the updates without a word)."""
    folder = p if MODEL_FOLDER.fullmatch(p.name) else p / "current"
    manifest = probe_json(folder / MANIFEST)
    if not isinstance(manifest, dict) or not updates_of(manifest):
        return ""
    run, base = run_of(p), trained_folder(manifest)
    sources = update_sources(manifest)
    if sources is None:
        return ""
    sources = ["the standard input it read" if s == "-" else s for s in sources]
    shown = ", ".join(sources[:3]) + (f" and {len(sources) - 3} more" if len(sources) > 3 else "")
    again = marked("run update-users again", "call update_users again")
    if base is None or not (run / base).is_dir():
        return f" (which drops the updates update-users made: {again} with {shown}, in that order)"
    cmd = command(f"embedrec verify {sh_quote(str(run / base))}")
    return (f"; that drops the updates update-users made: to keep them, serve the trained model again ({base}, "
            f"kept beside it; {cmd} first: docs/reliability.md, 'Rolling back a model') and {again} with {shown}, "
            "in that order")


def warn_updates_dropped(run_dir: Path, before: str, new: Path) -> None:
    """A warning where the model just published (a train) replaced one whose users update-users had re-solved: the
    new model knows those ratings only where its dataset holds them (a review of the design: the updates were
    otherwise lost in silence). Nothing where either manifest does not read."""
    try:
        old_m, new_m = (read_json(f / MANIFEST, "run manifest") for f in (run_dir / before, new))
    except (ArtifactError, OSError):
        return
    said, sources = updates_said(old_m), update_sources(old_m)
    if said is None or sources is None or updates_of(new_m):
        return
    held = _updates_held(run_dir / before, new)
    if held is not None and held[0] and held[1] == held[0]:  # the new dataset holds every pair the updates gave
        return  # (an ops review: a nightly train on the grown file was told each night its updates were lost)
    # the files whose updates added movies are run again with --new-movies (a diff review: said without it, the
    # movies they added would not come back)
    with_movies = list(dict.fromkeys(src for rec, src in zip(updates_of(old_m), sources) if rec.get("movies_added")))
    again = "" if not with_movies else \
        f" («--new-movies|new_movies=True» for {', '.join(with_movies[:3]).replace('%', '%%')}" \
        f"{' ...' if len(with_movies) > 3 else ''})"
    sources = list(dict.fromkeys(sources))
    lost = _added_lost(run_dir / before, new, USER_IDS, trained_users)
    movies = _added_lost(run_dir / before, new, MOVIE_IDS, trained_movies)
    gone = [f"{k[0]:,} of the {k[1]:,} {what} they added" for k, what in ((lost, "users"), (movies, "movies"))
            if k is not None and k[0]]
    if held is not None and held[0] and gone:  # an ops review: a nightly train on the grown file, time split,
        # served 902 added users as unknown: their only ratings were the held-out latest ones
        logging.getLogger("embedrec").warning(
            "%s now serves a model trained without the updates of the one it replaced (%s: %s): it holds %s of the "
            "%s pairs they gave, and %s %s not in it (no rating of theirs in its training data: its dataset does "
            "not hold them, or holds them out as test, as a time split holds the latest ratings out); ingest them "
            "with the rest (with --set split.test=0 to train on every rating) and train again, or run update-users "
            f"again with %s{again}", run_dir, before, said, f"{held[1]:,}", f"{held[0]:,}", " and ".join(gone),
            "is" if len(gone) == 1 and gone[0].startswith("1 of") else "are",
            ", ".join(sources[:3]) + (" ..." if len(sources) > 3 else ""), extra={"marks_only": True})
        return
    logging.getLogger("embedrec").warning(
        "%s now serves a model trained without the updates of the one it replaced (%s: %s): their ratings are in "
        "this model only where its dataset holds them%s; ingest them with the rest and train again, or run "
        f"update-users again with %s{again}", run_dir, before, said,
        f" ({held[1]:,} of the {held[0]:,} pairs they gave)" if held is not None and held[0] else "",
        ", ".join(sources[:3]) + (" ..." if len(sources) > 3 else ""), extra={"marks_only": True})


def _added_lost(old: Path, new: Path, name: str, trained) -> tuple[int, int] | None:
    """(how many of the users (``name`` USER_IDS, ``trained`` :func:`trained_users`) or movies (MOVIE_IDS,
    :func:`trained_movies`) update-users added to model folder ``old`` the model in ``new`` does not know, how many
    it added), by id; None where an array or manifest does not read."""
    import numpy as np

    try:
        m = read_json(old / MANIFEST, "run manifest")
        ids = np.asarray(np.load(old / name, mmap_mode="r", allow_pickle=False))[trained(m):]
        known = np.asarray(np.load(new / name, mmap_mode="r", allow_pickle=False))
    except (OSError, ValueError, TypeError, KeyError, ArtifactError):
        return None
    if not ids.size:
        return 0, 0
    try:
        return int(np.count_nonzero(~np.isin(ids, known))), int(ids.size)
    except TypeError:  # (ids of another type than the new model's: none of them known)
        return int(ids.size), int(ids.size)


def _updates_held(old: Path, new: Path) -> tuple[int, int] | None:
    """(the (user, movie) pairs the updates of model folder ``old`` gave, how many of them the model in ``new``
    holds among its seen pairs: its dataset had them), by id; None where any of the arrays does not read (an
    earlier update's pairs are not kept: then not all are known, and the warning stays)."""
    import numpy as np

    def load(folder: Path, name: str) -> np.ndarray:
        return np.load(folder / name, mmap_mode="r", allow_pickle=False)

    try:
        pairs = load(old, f"{UPDATE_PAIRS}.npy")
        if sum(int(u["pairs"]) for u in updates_of(read_json(old / MANIFEST, "run manifest"))) != pairs.size:
            return None  # (an update before those kept: its pairs unknown)
        users = np.asarray(load(old, USER_IDS))[np.asarray(pairs["user_idx"])]
        movies = np.asarray(load(old, MOVIE_IDS))[np.asarray(pairs["movie_idx"])]
        rows = []
        for ids, name in ((users, USER_IDS), (movies, MOVIE_IDS)):
            known = np.asarray(load(new, name))
            order = np.argsort(known, kind="stable")
            at = np.minimum(np.searchsorted(known[order], ids), known.size - 1)
            rows.append(np.where(known[order][at] == ids, order[at], -1))
        ptr, idx = (np.asarray(load(new, f"{name}.npy")) for name in ("seen_indptr", "seen_indices"))
    except (OSError, ValueError, TypeError, KeyError, IndexError, ArtifactError):
        return None
    u, m = rows
    n = int(idx.max(initial=0)) + 1 if idx.size else 1
    n = max(n, int(m.max(initial=0)) + 1)
    seen = np.repeat(np.arange(ptr.size - 1, dtype=np.int64), np.diff(ptr)) * n + idx.astype(np.int64)
    ok = (u >= 0) & (m >= 0)
    return int(pairs.size), int(np.count_nonzero(np.isin(u[ok] * n + m[ok], seen)))
