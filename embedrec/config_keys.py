"""The config's dotted keys, as what walks a nested config sees them: every key of a mapping (``_flat_keys``,
``flatten``; ``MAPPING_KEYS``, those whose value is one mapping), the keys that change no result's metrics
(``METRIC_NEUTRAL``, ``metric_config``), and the keys that hold paths (``PATH_KEYS``): rebased on a config
file's folder (``_rebase_paths``), and the folders the user did not set named after the data (``dataset_name``,
``resolve_paths``; ``DERIVED_NOTES``, the note ``embedrec config`` writes after such a folder, by which a file read
back has it named again: ``noted_folders``, ``_derived_folders``).

Below ``config.py``, which builds a ``Config`` with them; the standard library only.
"""

from __future__ import annotations

import copy
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


# the keys whose value is a mapping (data.event_weights): one value, not a section of keys, for what walks a
# nested config (its explicit keys, flatten, an ingest's recorded settings, tune-dims' written config)
MAPPING_KEYS = frozenset({"data.event_weights"})


def flatten(d: Mapping, prefix: str = "") -> dict:
    """A nested mapping (``Config.to_dict()``) as {dotted key: value} ({'model': {'dim': 8}} -> {'model.dim': 8})."""
    out: dict = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, Mapping) and f"{prefix}{k}" not in MAPPING_KEYS
                   else {f"{prefix}{k}": v})
    return out


def _flat_keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.add(key)
        if isinstance(v, dict) and key not in MAPPING_KEYS:
            out |= _flat_keys(v, key + ".")
    return out


# The config sections and keys that change no model's metrics: where things are written (run.*, tune.*, the
# dataset's folder and the cache), how a model is served (index.*, recommend.*) and how fast it trains (the thread
# count, whether checkpoints are kept). Left out of what a saved result is compared with before it is reused:
# tune-dims' trials (tune.trial_config_hash) and a cross-validation's folds (crossval.compared_config), each
# leaving out its own keys besides (a trial its dimension search and data.source, whose dataset it identifies by
# its manifest; a cross-validation split.fold, which each fold sets).
METRIC_NEUTRAL = ("run", "tune", "index", "recommend", "data.prepared", "data.cache_dir", "train.threads",
                  "train.keep_checkpoints")


def metric_config(d: Mapping, also: Iterable[str] = ()) -> dict:
    """A copy of the nested config mapping ``d`` (``Config.to_dict()``) without the :data:`METRIC_NEUTRAL` keys
    and ``also``'s (sections, 'run', or dotted keys, 'train.threads'): what a result's metrics depend on."""
    out = copy.deepcopy(dict(d))
    for key in (*METRIC_NEUTRAL, *also):
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return out


# keys holding paths: in a config file, a value starting with ./ or ../ is relative to the file's folder
PATH_KEYS = ("data.source", "data.movies", "data.test_source", "data.valid_source", "data.cache_dir", "data.prepared",
             "run.dir", "tune.dir")
NULL_PATH_KEYS = {"data.movies": "null for none", "data.test_source": "null for none",
                  "data.valid_source": "null for none", "data.cache_dir": "null for the default",
                  "tune.dir": "null for the default (run.dir/tune)"}  # what null means for the keys that take it


def _rebase_paths(raw: dict, base: Path) -> dict:
    """Paths in a config file written as ./x or ../x are relative to the file's folder; others to the cwd. A '..'
    is where the file system finds it (:func:`_joined`)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for key in PATH_KEYS:
        section, name = key.split(".")
        values = out.get(section)
        if isinstance(values, dict) and isinstance(values.get(name), str):
            v = values[name]
            if v.startswith(("./", "../", ".\\", "..\\")):
                values[name] = _joined(base, v)
    return out


def _joined(base: Path, value: str) -> str:
    """``value`` (a config file's './x' or '../x') joined to the file's folder ``base``: as text (os.path.normpath,
    relative where ``base`` is), or, where that names another place than the file system finds (a '..' after a
    link: 'ln/../../ds' with ln -> deep/sub is ./ds, where the text says ../ds), the place it finds, absolute
    (os.path.realpath). As tune-dims --write writes a path relative to the folder its file is in, links resolved
    (session 52's red team: a config written through a link named a dataset `evaluate -c` could not find)."""
    joined = os.path.join(base, value)
    text = os.path.normpath(joined)
    if os.pardir not in Path(joined).parts:  # no '..': the text is the path the file system follows
        return text
    real = os.path.realpath(joined)
    return text if os.path.realpath(text) == real else real


def dataset_name(source: str) -> str:
    """A folder name for a data source: 'ml-1m' -> 'ml-1m', 'path/ratings.csv' -> 'ratings', 'my ratings (été).csv'
    -> 'my-ratings-ete', '-' -> 'stdin'."""
    s = str(source).strip().rstrip("/\\")
    if s in ("", "-", "/dev/stdin") or s.startswith(("/dev/fd/", "/proc/self/fd/")):  # a pipe: <(cat r.csv)
        return "stdin"
    name = Path(s).name
    for packed in (".gz", ".bz2", ".xz", ".zst", ".zip", ".tgz", ".tar"):  # 'r.tsv.gz', 'ml.tar.gz': as ingest names it
        if name.lower().endswith(packed) and len(name) > len(packed):
            name = name[:-len(packed)]
    low = name.lower()
    for suffix in (".csv", ".tsv", ".tab", ".parquet", ".dat", ".txt", ".data"):
        if low.endswith(suffix) and len(name) > len(suffix):
            name = name[:-len(suffix)]
            break
    # accents taken off ('été' is 'ete', not '-t': a first-hour review), other letters kept as they are ('кино')
    name = unicodedata.normalize("NFC", "".join(_without_accent(c) for c in name))
    return re.sub(r"[^\w.-]+", "-", name).strip("-.") or "dataset"


def _without_accent(c: str) -> str:
    """A Latin letter without its accents ('é' -> 'e'); any other character as it is (a review: NFKD of every
    character took Japanese sound marks off, 'データ' -> 'テータ', and left Hangul decomposed, a folder name no one
    could type)."""
    d = unicodedata.normalize("NFD", c)
    return d[0] if len(d) > 1 and d[0].isascii() and all(unicodedata.combining(x) for x in d[1:]) else c


def resolve_paths(cfg: Config) -> None:
    """Name the folders the user did not set after the data: data.prepared = data/prepared/<source name>,
    run.dir = runs/<prepared folder name>. Keys set in a config file or with --set are kept. (Part of building a
    Config: it writes the frozen sections through object.__setattr__.)"""
    explicit = cfg.explicit_keys
    for key in PATH_KEYS:  # '~/runs/x' is the home folder's (a shell leaves '--set run.dir=~/x' as typed)
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if isinstance(value, str) and value.startswith("~"):
            object.__setattr__(getattr(cfg, section), name, os.path.expanduser(value))
    if "data.prepared" not in explicit:
        object.__setattr__(cfg.data, "prepared", f"data/prepared/{dataset_name(cfg.data.source)}")
    if "run.dir" not in explicit:
        object.__setattr__(cfg.run, "dir", f"runs/{Path(cfg.data.prepared).name or 'run'}")


# the note `embedrec config` (Config.to_yaml) writes after a folder the config did not set, which it named after the
# data: a file read back with it names that folder again (_derived_folders); a folder written without it is kept
DERIVED_NOTES = {"data.prepared": "named after data.source", "run.dir": "named after data.prepared"}
SAVED_WHOLE = 0.8  # the share of every key a file writes that makes it a whole saved config (as config_ingest's)


def _derived_folders(cfg: Config, noted: Iterable[str], file_keys: Iterable[str]) -> set[str]:
    """The folder keys of a config file that the data names, not the user: those ``embedrec config`` wrote with
    their note (``noted``: the keys whose line in the file ends in DERIVED_NOTES' comment), or any of a file that
    writes nearly every key (``file_keys``: an earlier embedrec saved one without the notes), and that still hold
    the name :func:`resolve_paths` gives them from the file's own data (a note left on a folder edited is no
    choice undone). Named again from the data, so ``ingest mine.csv -c saved.yaml`` does not write into the
    folders of the source the file was saved with; a folder a file gives without its note is kept as given, even
    where it reads as a derived one (a first-hour review: ``run.dir: ./runs/ml`` beside ``data.prepared: ./ml``
    became runs/ml_moved under ``--set data.prepared=ml_moved``)."""
    every = _flat_keys(type(cfg)().to_dict())  # every key, as the defaults hold them
    whole = len(every & set(file_keys)) >= SAVED_WHOLE * len(every)
    noted = set(noted)
    out = set()
    if ("data.prepared" in noted or whole) and cfg.data.prepared == f"data/prepared/{dataset_name(cfg.data.source)}":
        out.add("data.prepared")
    if ("run.dir" in noted or whole) and cfg.run.dir == f"runs/{Path(cfg.data.prepared).name or 'run'}":
        out.add("run.dir")
    return out


def noted_folders(text: str, key_lines: Mapping[str, int]) -> set[str]:
    """The folder keys whose line in a config file's ``text`` (``key_lines``: {dotted key: its 1-based line})
    ends in the note of DERIVED_NOTES that ``embedrec config`` writes after a folder it named after the data."""
    lines = text.splitlines()
    out = set()
    for key, note in DERIVED_NOTES.items():
        at = key_lines.get(key)
        if at is not None and 0 < at <= len(lines) and re.search(r"\s#\s*" + re.escape(note) + r"\s*$", lines[at - 1]):
            out.add(key)
    return out
