"""update-users' reading settings: the data.* keys the dataset was ingested with, taken unless the config sets them."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from embedrec.errors import (
    EmbedrecError,
    set_hint,
)
from embedrec.run_layout import (
    CONFIG,
)
from embedrec.user_update_file import (
    _shown,
)

log = logging.getLogger("embedrec")

if TYPE_CHECKING:  # annotations only: no import at run time
    from collections.abc import Iterable

    from embedrec.config import DataConfig
    from embedrec.data.readers import RawData
    from embedrec.run import Run



# how --ratings is read where the config does not say: as the run's dataset was ingested (its manifest's config,
# else the run's config.yaml), the new ratings being of the same data (a review: a dataset ingested with
# data.columns.user=customer, then update-users refused its since.csv, "no column 'user_id'"); not data.format
# (the file's name says it) nor data.id_type (the ids are read as the run's are: read_ratings)
AS_INGESTED = ("data.columns.user", "data.columns.movie", "data.columns.rating", "data.columns.timestamp",
               "data.separator", "data.header", "data.encoding", "data.decimal", "data.missing",
               "data.timestamp_unit", "data.timestamp_format", "data.id_case", "data.event_weights")


def as_ingested(run: Run, data_cfg: DataConfig, given: Iterable[str] | None, source: str = "-") -> DataConfig:
    """``data_cfg`` with each reading setting of AS_INGESTED that ``given`` (the keys the config or --set gives:
    config_ingest.chosen_keys; None: those at other values than the defaults) does not name taken from the config the
    run's dataset was ingested with (its manifest, at the path the run records; where that cannot be read, a
    dataset moved or gone, the data section of the run's config.yaml, which records it since session 48), said in
    one line where one differs; ``data_cfg`` as it is where neither says (a dataset made in memory)."""
    cfg, taken, said = _as_ingested(run, data_cfg, given)
    _say_as_ingested(source, said, taken)
    return cfg


def _as_ingested(run: Run, data_cfg: DataConfig, given: Iterable[str] | None) -> tuple[DataConfig, list, str]:
    """(:func:`as_ingested`'s config, the (key, value) pairs it took from the recorded config, how to name that),
    nothing said."""
    from embedrec.config import DataConfig

    recorded, said = _recorded_data(run)
    if recorded is None:
        return data_cfg, [], said
    default = DataConfig()
    if given is None:  # what differs from the defaults was given
        given = [k for k in AS_INGESTED if _value(data_cfg, k) != _value(default, k)]
    data, cols, taken = {}, {}, []
    for key in AS_INGESTED:
        if key in given:
            continue
        name = key.split(".")[-1]
        then = (recorded.get("columns") or {}).get(name, ...) if key.startswith("data.columns.") else \
            recorded.get(name, ...)
        if then is ... or then == _value(data_cfg, key) or not _fits(then, _value(default, key), key):
            continue
        (cols if key.startswith("data.columns.") else data)[name] = then
        taken.append((key, then))
    if not taken:
        return data_cfg, [], said
    return dataclasses.replace(data_cfg, columns=dataclasses.replace(data_cfg.columns, **cols), **data), taken, said


def id_columns(run: Run, data_cfg: DataConfig, given: Iterable[str] | None) -> dict[str, str]:
    """{"user_id": ..., "movie_id": ...}: the names of the user and movie id columns of a file of the run's pairs
    (data.columns.user and .movie where ``given`` names them, else as the run's dataset was ingested), which
    ``evaluate --truth`` and ``--lists`` read as user_id and movie_id (a first-hour review: a held-out file of the
    customer_id,product_id columns ingest had read was refused, where update-users read it)."""
    cfg, _, _ = _as_ingested(run, data_cfg, given)
    return {"user_id": cfg.columns.user, "movie_id": cfg.columns.movie}


def _say_as_ingested(source: str, said: str, taken: list) -> None:
    """The one line saying which reading settings were taken from how the run's dataset was ingested, if any."""
    if taken:
        log.info("reading %s as %s was ingested: %s (a key given «with --set|in the config» reads it otherwise)",
                 _shown(source), said, ", ".join(f"{key}={_shown_value(v)}" for key, v in taken))


def _say_passed_over(source: str, said: str, raw: RawData) -> None:
    """One line for each column the file names twice, the dataset's name and the default one (columns.passed_over):
    the one read, and how to read the other."""
    for key, (read, other) in (getattr(raw, "columns_passed_over", None) or {}).items():
        log.info(f"%s has both a '%s' and a '%s' column: read '%s' for the %s, as %s was ingested "
                 f"({set_hint(f'data.columns.{key}', other)} reads '%s')", _shown(source), read, other, read, key,
                 said, other)


def _read_by_default(raw: RawData, key: str) -> bool:
    """Whether the column of data.columns ``key`` was read under its default name, not the recorded one
    (tables.read_generic's ``or_default``; RawData.columns_read records the name read)."""
    from embedrec.config import ColumnsConfig
    from embedrec.config_values import plain_name

    if not key.startswith("data.columns."):
        return False
    name = key.rsplit(".", 1)[1]
    read = raw.columns_read.get(name)
    return isinstance(read, str) and plain_name(read) == plain_name(getattr(ColumnsConfig, name))


def _unread(raw: RawData, key: str) -> bool:
    """Whether the recorded setting ``key`` had nothing of the file to read: the timestamp column and its format
    where the file has no times (a first-hour review: 'reading f.csv as dataset was ingested: ...,
    data.columns.timestamp=event_time' said of a user_id,movie_id,rating file), the unit where no Unix times were
    read."""
    if key in ("data.columns.timestamp", "data.timestamp_format"):
        return "timestamp" not in raw.ratings
    return key == "data.timestamp_unit" and raw.timestamp_unit is None


def _recorded_data(run: Run) -> tuple[dict | None, str]:
    """(the data section the run's dataset was ingested with, how to name it): its manifest's config, at the path
    the run records; else the run's config.yaml's data section (checked against the run's manifest), which records
    the dataset's since session 48 (an earlier run's holds the train command's); (None, '') where neither reads."""
    import yaml

    from embedrec.config_ingest import data_as_read
    from embedrec.data.layout import read_manifest
    from embedrec.data.readers import LAYOUT_NAMES

    rec = run.manifest.get("dataset") or {}
    path, want = rec.get("path"), rec.get("files_fingerprint")
    try:  # read as every reader of a dataset's manifest reads it: bounded, a regular file, its seal checked; and
        # only the dataset the run was trained on (a red team: an edited one was followed, and one re-ingested at
        # that path would be), by its files' fingerprint
        folder = Path(path)
        manifest, _ = read_manifest(folder / "current" if (folder / "current").exists() else folder, folder)
        recorded = data_as_read(manifest)
        if isinstance(recorded, dict) and (not want or manifest.get("fingerprint") == want):
            if manifest.get("layout") in LAYOUT_NAMES:  # a release, read as released: its reading settings were
                # never applied (ingest warned them of no effect), so none is the file's (a red team: a
                # data.columns.rating=null given to ml-100k read an update's ratings as likes)
                return {}, f"dataset '{manifest.get('name') or path}'"
            return _with_unit(recorded, manifest.get("timestamp_unit_read")), \
                f"dataset '{manifest.get('name') or path}'"
    except (OSError, ValueError, TypeError, KeyError, EmbedrecError):
        pass
    if rec.get("layout") in LAYOUT_NAMES:  # the dataset gone, but the run records a release's: as above, none of
        # the reading settings config.yaml may record was applied (a session-49 gap: one was read from there)
        return {}, f"dataset '{rec.get('name') or path}'"
    try:
        raw = run.read_verified(run.path / CONFIG)
        recorded = (yaml.safe_load(raw) or {}).get("data") if raw is not None else None
    except (EmbedrecError, yaml.YAMLError, AttributeError) as e:  # said, not skipped (a red team: the error that
        # followed named the file's columns, never the damaged config.yaml)
        why = getattr(e, "raw", str(e)).split("\n")[0]  # its «CLI|library» marks resolved by the log's filter
        log.warning(f"cannot read how the run's dataset was ingested from {run.path / CONFIG} ({why}): reading "
                    "the file with the command's settings")
        recorded = None
    return (_with_unit(recorded, rec.get("timestamp_unit_read")), "the run's dataset (its config.yaml)") \
        if isinstance(recorded, dict) else (None, "")


def _with_unit(recorded: dict, unit) -> dict:
    """A dataset's recorded data section with data.timestamp_unit the unit its Unix times were read in where it
    says auto (the manifest's timestamp_unit_read): a file of new ratings is read in the dataset's unit, not its
    own guess (a red team: 900000000 beside a row in nanoseconds was read as microseconds, 1970)."""
    from embedrec.data.times import UNITS

    if recorded.get("timestamp_unit", "auto") == "auto" and unit in UNITS:
        return {**recorded, "timestamp_unit": unit}
    return recorded


def _value(data_cfg: DataConfig, key: str):
    """The value of a dotted data.* ``key`` in ``data_cfg``."""
    now: object = data_cfg
    for part in key.split(".")[1:]:
        now = getattr(now, part)
    return now


def _fits(value, default, key: str) -> bool:
    """Whether a recorded ``value`` is of the kind ``key`` takes (its default's, or None for a column a file may
    lack, data.separator's auto, no data.event_weights): a sealed manifest holds what a config took, but an older
    one may lack a key."""
    if value is None:
        return key in ("data.columns.rating", "data.columns.timestamp", "data.separator", "data.event_weights",
                       "data.timestamp_format")
    if key == "data.event_weights":  # a mapping of event types to numbers (a review: a shop log's update read its
        # event column as numbers, 'view' is not a number, where ingest had weighed it)
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(w, (int, float)) and
                                               not isinstance(w, bool) for k, w in value.items())
    if isinstance(default, bool):
        return isinstance(value, bool)
    return isinstance(value, str) if isinstance(default, str) or default is None else False


def _shown_value(value) -> str:
    """A recorded setting as a --set writes it: null, a mapping in YAML's flow style ({view: 1, cart: 3})."""
    if value is None:
        return "null"
    if isinstance(value, dict):  # each key as a YAML key reads back (a review: 'x: y' unquoted)
        from embedrec.data.columns import _yaml_key

        return "{" + ", ".join(f"{_yaml_key(str(k))}: {w:g}" for k, w in value.items()) + "}"
    return str(value)
