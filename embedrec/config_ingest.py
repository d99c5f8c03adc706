"""The settings a dataset was ingested with, as its manifest records them (its ``config``, ``source_path``,
``movies_path``, ``rating_histogram``, ...), read by a command that uses the dataset: the warning of a
like/dislike dataset a ranking model would learn its dislikes from (``dislikes_warning``); the ingest settings
a config sets otherwise than the dataset was made with (``ingest_settings_warning``, over ``chosen_keys``, the
keys a config gives as a choice); the settings an ingest again repeats (``recorded_ingest_sets``); the folder an
ingest ran in and the files it read from there (``ingest_folder``, ``path_from``, ``recorded_movies``); and a
config that says of its data what the dataset was made with (``with_ingest_settings``: a run's config.yaml,
tune-dims' written config).

Above ``config.py``: it builds on ``Config`` (``Config()``'s defaults, ``Config.updated``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from embedrec.config import Config
from embedrec.config_keys import MAPPING_KEYS, _flat_keys
from embedrec.errors import ConfigError, marked, sh_join, sh_quote

_NOT_COMPARED = {"data.source", "data.movies", "data.test_source", "data.valid_source", "data.prepared",
                 "data.cache_dir"}  # where the data is, not how


def dislikes_warning(manifest: dict, dataset: object) -> str | None:
    """The line a ranking model's train (and tune-dims) says of a like/dislike dataset whose dislikes it would
    count as positives: at most three distinct ratings, some 0 or below, data.min_rating null (a first-hour
    pass: a 0/1 file's 0s were trained as likes without a word; a review: not for a star scale's lowest star,
    nor where the user set a floor), else None."""
    hist = manifest.get("rating_histogram") or {}
    if manifest.get("min_rating") is not None or not 1 < len(hist) <= 3:
        return None
    try:
        low = sum(int(n) for k, n in hist.items() if float(k) <= 0)
    except (TypeError, ValueError):
        return None
    if not low:
        return None
    if manifest.get("repeats") == "sum":  # auto leaves summed counts alone: the floor named (a review: advice that
        floor = min((float(k) for k in hist if float(k) > 0), default=1.0)  # looped)
        fix = (f"«{reingest_command(manifest, dataset, ['--set', f'data.min_rating={floor:g}'])}|"
               f"data.min_rating={floor:g} and overwrite=True»")
    else:
        fix = (f"«{reingest_command(manifest, dataset, ['--set', 'data.min_rating=auto'])}|"
               "data.min_rating='auto' and overwrite=True», the default")
    return (f"{low:,} of the ratings of dataset '{dataset}' are 0 or below (dislikes, on its like/dislike scale), and the "
            f"ranking model counts every rated movie as a positive; to learn from the likes only, ingest it again: "
            f"{fix} (the dislikes are then still never recommended back to their users)")


def two_values_train_warning(manifest: dict, dataset: object) -> str | None:
    """The line a ranking model's train (and tune-dims) says of a dataset whose ratings hold two values above 0
    that ingest's data.min_rating: auto learnt both as likes (the manifest's ``two_positive_values``, with the
    counts of its ``rating_histogram``), as ingest warned (a review: train said nothing, and a thumbs file coded
    1/2 was trained as all likes); else None. Each reading's command names the dataset's source and folder (a
    review: '--set data.min_rating=2 --overwrite' alone ingested ML-100K). Its «CLI|library» marks are for the
    caller to resolve."""
    pair = manifest.get("two_positive_values")
    if not pair or manifest.get("min_rating") is not None:
        return None
    try:
        low, high = float(pair[0]), float(pair[1])
    except (TypeError, ValueError, IndexError):
        return None
    hist = manifest.get("rating_histogram") or {}
    n_low, n_high = (int(hist.get(f"{v:g}", 0)) for v in (low, high))
    dislike = reingest_command(manifest, dataset, ["--set", f"data.min_rating={high:g}"])
    likes = reingest_command(manifest, dataset, ["--set", "data.min_rating=null"])
    return (f"the ratings of dataset '{dataset}' hold two values, {low:g} ({n_low:,}) and {high:g} ({n_high:,}), both "
            f"above 0, and the ranking model learns both as likes (data.min_rating: auto cannot tell them apart); if "
            f"{low:g} is a dislike, ingest it again: «{dislike}|with data.min_rating={high:g} and overwrite=True»; if "
            f"both are likes, «{likes}|data.min_rating=None and overwrite=True» keeps both without this warning")


def reingest_args(source: str | None, prepared, sets: list[str], extra: list[str]) -> list[str]:
    """``embedrec ingest SOURCE --set data.prepared=PREPARED --set RECORDED... EXTRA --overwrite``: the command
    that ingests the dataset at ``prepared`` again from ``source`` with the settings it was ingested with
    (``sets``, key=value), ``extra`` (--set pairs) winning over a recorded key (a first-hour pass: told to "ingest
    with --set split.test=0", it ran ingest without its source, which read ML-100K)."""
    given = {extra[i + 1].split("=", 1)[0] for i in range(len(extra) - 1) if extra[i] == "--set"}
    return ["embedrec", "ingest", *([source] if source else []), "--set", f"data.prepared={prepared}",
            *(a for kv in sets if kv.split("=", 1)[0] not in given for a in ("--set", kv)), *extra, "--overwrite"]


def reingest_command(manifest: dict, prepared, extra: list[str]) -> str:
    """:func:`reingest_args` of a dataset's ``manifest`` (its source as a path from anywhere, its movies file, the
    settings it records), as one shell line."""

    source = manifest.get("source_path") or manifest.get("source")
    movies = recorded_movies(manifest)
    sets = ([f"data.movies={movies}"] if movies else []) + recorded_ingest_sets(manifest.get("config") or {})
    return sh_join(reingest_args(source if isinstance(source, str) and source else None, prepared, sets, extra))


def recorded_ingest_sets(recorded: dict, skip=()) -> list[str]:
    """The ``key=value`` settings (data.* and split.*) a dataset's manifest ``config`` (``recorded``) was ingested
    with where they differ from the defaults, as --set takes them, but where the data is (data.source, ...) and the
    keys of ``skip``: what a command that ingests it again repeats (a review: the advice to ingest again with
    split.test=0 lost a time split and data.min_rating)."""
    import json

    default = Config().to_dict()
    out = []
    for section in ("data", "split"):
        def walk(now, was, prefix):
            for k, v in (now or {}).items():
                key = f"{prefix}{k}"
                if isinstance(v, dict) and key not in MAPPING_KEYS:
                    walk(v, was.get(k) if isinstance(was, dict) else {}, key + ".")
                elif key not in _NOT_COMPARED and key not in skip and (not isinstance(was, dict) or
                                                                        v != was.get(k)):
                    out.append(f"{key}={v if isinstance(v, str) else json.dumps(v)}")
        walk(recorded.get(section) if isinstance(recorded, dict) else None, default[section], f"{section}.")
    return out


def ingest_folder(manifest: dict) -> Path | None:
    """The folder an ingest ran in, from its manifest's source as given and as resolved (``source_path``), where the
    one ends with the other; None otherwise (a release name, stdin, an absolute source)."""
    given, full = manifest.get("source"), manifest.get("source_path")
    if not (isinstance(given, str) and isinstance(full, str)) or os.path.isabs(given):
        return None
    parts, whole = Path(os.path.normpath(given)).parts, Path(full).parts
    if ".." in parts or len(parts) >= len(whole) or whole[-len(parts):] != parts:
        return None
    return Path(*whole[:-len(parts)])


def path_from(value, base: Path | None):
    """A recorded relative path made absolute from the ingest's folder ``base`` (:func:`ingest_folder`) where that
    file is there; a release name, '-' or a path not found there as it was."""
    if not isinstance(value, str) or not value or value == "-" or os.path.isabs(value) or base is None:
        return value
    there = base / value
    return str(there) if there.exists() else value


def recorded_movies(manifest: dict) -> str | None:
    """The movies file (data.movies) the dataset of ``manifest`` was ingested with, as a path from anywhere: its
    ``movies_path`` (recorded since session 45), else the recorded data.movies made absolute from the folder the
    ingest ran in where it is there, else as recorded; None where it was ingested without one."""
    recorded = ((manifest.get("config") or {}).get("data") or {}).get("movies") if isinstance(manifest, dict) else None
    if not isinstance(recorded, str) or not recorded:
        return None
    full = manifest.get("movies_path")
    return full if isinstance(full, str) and full else path_from(recorded, ingest_folder(manifest))


def with_ingest_settings(cfg: Config, manifest: dict | None) -> tuple[Config, list[str]]:
    """``cfg`` with the data.* and split.* settings the dataset of ``manifest`` was ingested with (its recorded
    ``config``), and the notes worth saying of them: data.source the file it was read from and data.movies its
    movies file (made absolute from the folder the ingest ran in), data.prepared kept. What a config written for
    that dataset says of its data, so `ingest -c` with it makes that dataset again: tune-dims' written config (a
    first-hour review: a config written for a dataset of their own clicks kept data.source ml-100k, and `ingest -c
    it --overwrite` replaced their dataset with MovieLens) and a run's config.yaml (a review: a run trained on a
    shop log recorded `source: ml-100k` and MovieLens' columns). The recorded values win over the config's own:
    the model was trained on the dataset as prepared, whatever the config said (train and tune-dims warn where
    they differ), and a config saved whole sets every key (a review: its data.source ml-100k was kept)."""
    recorded = manifest.get("config") if isinstance(manifest, dict) else None
    if not isinstance(recorded, dict):
        return cfg, []
    notes = []
    base = ingest_folder(manifest)
    recorded = {**recorded, "data": data_as_read(manifest) or {}}
    for key, value in _leaves({s: recorded.get(s) or {} for s in ("data", "split")}):
        if key in ("data.prepared", "data.cache_dir"):
            continue
        if key == "data.source":
            value = manifest.get("source_path") if isinstance(manifest.get("source_path"), str) and \
                os.path.exists(manifest["source_path"]) else path_from(manifest.get("source"), base)
        elif key == "data.movies":
            value = recorded_movies(manifest)  # its movies_path, or made absolute from the ingest's folder
            if isinstance(value, str) and not os.path.isabs(value) and isinstance(cfg.data.movies, str) and \
                    os.path.exists(cfg.data.movies):  # not found from the ingest's folder: the config's own, which
                value = os.path.abspath(cfg.data.movies)  # is there (a review: 'm.csv' beat a working absolute)
            elif isinstance(value, str) and not os.path.isabs(value) and not os.path.exists(value):
                notes.append(f"the movies file '{value}' the dataset was ingested with is not found from here; the "
                             "written config names it as recorded: give its path (data.movies) before ingesting "
                             "with it")
        if key == "data.source" and value == "-":
            notes.append("the dataset was ingested from standard input: 'ingest -c' with the written config reads "
                         "standard input again")
        try:  # the folder stays the one trained on (a new data.source would name another)
            cfg = cfg.updated({key: value, "data.prepared": cfg.data.prepared})
        except ConfigError:  # a key of an older release, or a value it no longer takes: left as it is
            continue
    return cfg, notes


def data_as_read(manifest: dict):
    """The data section a dataset's ``manifest`` records (its config's), each column under the name ingest read it
    by where that is another (columns_read: a column guessed, 'customer_id' for the user while data.columns.user
    stays user_id; a red team: update-users then read a file's user_id over its customer_id, the dataset's users):
    how the dataset was read, for update-users' file and a run's config.yaml."""
    config = manifest.get("config")
    recorded = config.get("data") if isinstance(config, dict) else None
    read = manifest.get("columns_read")
    if not isinstance(recorded, dict) or not isinstance(read, dict):
        return recorded
    from embedrec.config_values import plain_name

    columns = recorded.get("columns") if isinstance(recorded.get("columns"), dict) else {}
    names = {k: v for k, v in read.items() if k in ("user", "movie", "rating", "timestamp") and isinstance(v, str)
             and not (isinstance(columns.get(k), str) and plain_name(columns[k]) == plain_name(v))}  # (a spelling
    if not names:  # of the name asked for, 'userId' for user_id, reads alike: not another name)
        return recorded
    return {**recorded, "columns": {**columns, **names}}


def _leaves(d: dict, prefix: str = ""):
    """(dotted key, value) of every leaf of a nested mapping: data.columns.movie, not data.columns whole (a
    review: one column set in the config dropped the others recorded)."""
    for k, v in d.items():
        if isinstance(v, dict) and f"{prefix}{k}" not in MAPPING_KEYS:  # (data.event_weights: one value)
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


SAVED_WHOLE = 0.8  # the share of the data and split keys a file gives that makes it a saved whole config (35 keys
# in session 49, each session adding one or two: a file saved 5 keys ago still counts; no hand-written one gives 28)


def chosen_keys(cfg: Config, keys) -> list[str]:
    """Those of ``keys`` (dotted data.* and split.* keys) that ``cfg`` gives as a choice: by --set, an override or
    updated(), or by a config file, but not at its default value in a file that writes every data and split key
    (as `embedrec config` saves one: each key is written there, none chosen; or nearly every one, SAVED_WHOLE of
    them: a file an earlier embedrec saved lacks the keys added since, a review found its defaults read as choices).
    What a command that reads its data
    as the dataset was ingested keeps from the config (update-users' --ratings: ``user_update_settings.as_ingested``), as
    :func:`ingest_settings_warning` compares those keys."""
    default = Config()
    compared = {k for k in _flat_keys({s: default.to_dict()[s] for s in ("data", "split")}) if k not in _NOT_COMPARED}
    saved_whole = len(compared & cfg.explicit_keys) >= SAVED_WHOLE * len(compared)
    out = []
    for key in keys:
        if key not in cfg.explicit_keys:
            continue
        now, was = cfg, default
        for part in key.split("."):
            now, was = getattr(now, part, None), getattr(was, part, None)
        if key in cfg.set_keys or not saved_whole or now != was:
            out.append(key)
    return out


def ingest_settings_warning(cfg: Config, recorded: dict, dataset: object, command: str,
                            read_as: dict | None = None, manifest: dict | None = None) -> str | None:
    """The warning for data.* and split.* keys the config sets (in its file or with --set) to values other than
    ``recorded`` (the config a dataset was ingested with, from its manifest), or None: ``command`` (train,
    tune-dims) uses the dataset as prepared, so `train --set split.method=user_time` would otherwise train on the
    random split without a word. In a config file that writes every data and split key (as `embedrec config`
    saves one), a key at its default value is not counted: a first-hour review was told to ingest its text ids
    again with data.id_type=int, which they cannot pass; in a file of a few keys, or with --set, it is (a review:
    `split: {method: random}` written on purpose was no longer said). ``read_as``: the manifest's columns_read, the
    file columns ingest read under another name ('score' for data.columns.rating 'rating'): a config naming them
    names what was read (a review: warned as a difference). ``manifest``: the dataset's, whose ``repeats`` says
    what data.repeats was there (auto resolves to sum or latest by the data): auto in the config matches either,
    and a recorded auto is the value it resolved to (a review: false warnings both ways); data.min_rating's auto
    likewise, by the manifest's ``min_rating``."""
    import json

    differ = []
    chosen = set(chosen_keys(cfg, cfg.explicit_keys))  # a saved config's default is no choice: one of every key
    for key in sorted(cfg.explicit_keys):
        # where the data is: not compared, but for a movies file given on this command line (a first-hour pass:
        # `train --set data.movies=FILE` was passed over without a word, where split.test is said)
        if key.split(".")[0] not in ("data", "split") or not recorded or (
                key in _NOT_COMPARED and not (key == "data.movies" and key in cfg.set_keys)):
            continue  # not recorded: a dataset written in memory
        then: object = recorded
        for part in key.split("."):
            then = then.get(part) if isinstance(then, dict) else None
        if key not in chosen:
            continue
        now: object = cfg
        for part in key.split("."):
            now = getattr(now, part, None)
        if key.startswith("data.columns.") and (read_as or {}).get(key.rsplit(".", 1)[1]) == now:
            continue  # the column ingest read under its default's name
        if key == "data.movies" and isinstance(now, str) and isinstance(then, str) and \
                os.path.realpath(now) == os.path.realpath(then):
            continue  # the file it was ingested with, spelt otherwise
        if key == "data.repeats" and manifest is not None:
            if now == "auto":
                continue  # auto is whatever the data made it
            then = "sum" if manifest.get("repeats") == "sum" else "latest"
        if key == "data.min_rating" and manifest is not None and "min_rating" in manifest:
            if now == "auto":  # auto is whatever the data made it, as data.repeats' (a review: null and 1 were
                continue       # warned of against an auto that had made them)
            then = manifest["min_rating"]  # what the dataset holds: a recorded auto is the value it resolved to
        if not dataclasses.is_dataclass(now) and json.loads(json.dumps(now, default=str)) != then:  # not a section
            differ.append((key, now, then))
    if not differ:
        return None

    def shown(v) -> str:  # as a config writes it: null, true, [1, 5]
        return v if isinstance(v, str) else json.dumps(v)

    one = len(differ) == 1
    if manifest is not None:  # the whole command, its source and recorded settings too (a first-hour review: the
        # key's --set alone left the rest to find)
        extra = [a for k, v, _ in differ for a in ("--set", f"{k}={shown(v)}")]
        again = marked(f": {reingest_command(manifest, dataset, extra)}", " with the config's values and "
                       "overwrite=True") + ","
    else:
        sets = " ".join(f"--set {sh_quote(f'{k}={shown(v)}')}" for k, v, _ in differ)
        again = (f" with «{sets} --overwrite|the config's values and overwrite=True» (and the options it was ingested "
                 "with),")
    return (f"{', '.join(f'{k}={shown(v)}' for k, v, _ in differ)} {'is an' if one else 'are'} ingest "
            f"setting{'' if one else 's'}, but dataset '{dataset}' was prepared with "
            f"{', '.join(f'{k}={shown(t)}' for k, _, t in differ)}, and {command} uses it as prepared (the dataset "
            f"holds what ingest made of {'it' if one else 'them'}); to {'sweep' if command == 'tune-dims' else command} with "
            f"{'it' if one else 'them'}, ingest again{again} then {command}")
