"""Typed values into frozen config dataclasses: the checks behind ``config.load_config``, none of them about one
key. A mapping (from YAML or ``--set``) is set field by field (:func:`apply_values`): an unknown key is refused
with the close one meant, a value of the wrong type or out of its field's range (``min``, ``max``, ``gt`` in the
field's metadata) with the key and the bad value, bounded (:func:`show`). YAML is read with a key given twice in
one mapping refused (:func:`unique_keys_loader`)."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Literal, Union

from embedrec.errors import ConfigError


def plain_name(name) -> str:
    """A column name as people vary it: 'UserID', 'userId', ' user_id' and 'User ID' are all 'userid' (its
    characters that are not str.isalnum left out, which [\\W_] matches, every code point alike). Here, below the
    data readers (data.parsing gives it them), as config_ingest compares a dataset's recorded column names by it."""
    return _NOT_ALNUM.sub("", str(name).lower())


_NOT_ALNUM = re.compile(r"[\W_]+")


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        args = typing.get_args(tp)
        return repr(args[0]) if len(args) == 1 else "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is list:  # 'a list of integers', not 'a list of an integer' (a first-hour review)
        inner = typing.get_args(tp)[0]
        return f"a list of {_PLURAL.get(inner) or type_name(inner)}"
    if origin is dict:  # data.event_weights
        key, value = typing.get_args(tp)
        return f"a mapping of {_PLURAL.get(key) or type_name(key)} to {_PLURAL.get(value) or type_name(value)}"
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(tp, str(tp))


_PLURAL = {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}


def coerce(value: Any, tp: Any) -> Any:
    """Return value as type tp, or raise TypeError. No string-to-number guessing beyond YAML's own. A numpy number
    or array is taken as the Python number or list it holds, and a tuple as a list (a red team from a notebook:
    ``cfg.updated({'model.dim': best['dim']})``, an np.int64 from a DataFrame, was refused where '8' was taken,
    and an np.array a bare ValueError)."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):  # np.int64(8), np.array([8, 16])
        # np.float32(0.01) as the 0.01 it prints, not 0.009999999776482582
        value = float(str(value)) if type(value).__name__ in ("float16", "float32") else value.tolist()
    if isinstance(value, tuple):
        value = list(value)
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise TypeError
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return coerce(value, arg)
            except TypeError:
                continue
        raise TypeError
    if origin is list:
        if not isinstance(value, list):
            raise TypeError
        (inner,) = typing.get_args(tp)
        return [coerce(v, inner) for v in value]
    if origin is dict:  # {view: 1, purchase: 5}: text keys (a number written as a key, 1: 5, is its text '1';
        # YAML's true/false/null keys, from an unquoted yes, no, on, off or null, are refused: quote them)
        if not isinstance(value, dict):
            raise TypeError
        kt, vt = typing.get_args(tp)
        out = {}
        for k, v in value.items():
            if isinstance(k, bool) or k is None or not isinstance(k, (str, int)):
                raise TypeError
            out[coerce(str(k), kt)] = coerce(v, vt)
        return out
    if tp is type(None):
        if value is None:
            return None
        raise TypeError
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if tp is int:
        if isinstance(value, str) and re.fullmatch(r"[+-]?(0|[1-9][0-9]*)", value.strip()):  # '42' from Python, as
            return int(value.strip())  # '0.01' is taken for a float (a review); never '010' (YAML 1.1's octal 8)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string; float() does not
            try:
                value = float(value.strip())
            except ValueError:
                raise TypeError from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if tp is str:
        if isinstance(value, str):
            return value
        raise TypeError
    raise TypeError


def close_matches(name: str, options, cutoff: float = 0.6) -> list[str]:
    import difflib  # only when a key is wrong: a start-up that parses nothing never loads it

    return difflib.get_close_matches(name, list(options), n=1, cutoff=cutoff)


_SEP = ("sep", "delimiter", "delim", "delimeter", "field_separator", "field_sep", "separator_char")
# the names other tools give a key (pandas' sep and delimiter, csv's delim, a user/item column setting), which the
# fuzzy match misses or sends elsewhere (a first-hour review: data.sep got the list of every key; data.movie is
# nearer data.movies, the movies file, than data.columns.movie): full key as written -> the key it means
KEY_ALIASES = {
    **{f"data.{a}": "data.separator" for a in _SEP},
    **{f"data.movies_{a}": "data.movies_separator" for a in _SEP},
    **{f"data.{a}": "data.encoding" for a in ("enc", "charset", "codec", "file_encoding", "encode")},
    **{f"data.{a}": "data.columns.user" for a in ("user", "users", "user_col", "user_column", "user_id",
                                                  "userid", "user_id_col", "columns.user_id", "columns.userid",
                                                  "columns.users", "columns.customer", "columns.uid")},
    **{f"data.{a}": "data.columns.movie" for a in ("movie", "item", "items", "movie_col", "movie_column",
                                                   "item_col", "item_column", "movie_id", "item_id", "movieid",
                                                   "itemid", "columns.item", "columns.items", "columns.item_id",
                                                   "columns.movie_id", "columns.movieid", "columns.itemid",
                                                   "columns.movies", "columns.iid", "columns.product",
                                                   "columns.book", "columns.artist")},
    **{f"data.{a}": "data.columns.rating" for a in ("rating", "rating_col", "rating_column", "columns.ratings",
                                                    "columns.score", "columns.stars", "columns.value")},
    **{f"data.{a}": "data.columns.timestamp" for a in ("timestamp", "time", "timestamp_col", "time_col",
                                                       "columns.time", "columns.ts", "columns.date",
                                                       "columns.datetime")},
    **{f"data.{a}": "data.columns.title" for a in ("title", "columns.name", "columns.titles")},
    **{f"data.{a}": "data.columns.genres" for a in ("genres", "columns.genre", "columns.tags")},
}


def alias_hint(key: str) -> str:
    """'; did you mean 'data.separator'?' for a key another tool names so (:data:`KEY_ALIASES`, ``key`` as written,
    any case, '-' as '_'); '' for any other."""
    meant = KEY_ALIASES.get(key.lower().replace("-", "_"))
    return f"; did you mean '{meant}'?" if meant else ""


def suggest(name: str, options: list[str], prefix: str = "") -> str:
    close = close_matches(name, options, cutoff=0.6)  # 0.5 offered 'compile' for 'nope' (a first-hour review)
    if close:
        return f"; did you mean '{prefix}{close[0]}'?"
    return f"; valid keys: {', '.join(prefix + o for o in options)}"


def _dotted_guess(obj: Any, name: str) -> str | None:
    """The dotted key a top-level ``name`` without its dot most likely means: 'modeldim' -> 'model.dim' (a
    first-hour review: 'model' was offered), 'dim' -> 'model.dim' where one section alone has that key."""
    keys = []
    for f in dataclasses.fields(obj):
        sub = getattr(obj, f.name)
        if dataclasses.is_dataclass(sub) and not f.metadata.get("internal"):
            keys += [f"{f.name}.{g.name}" for g in dataclasses.fields(sub) if not g.metadata.get("internal")]
    low = name.lower().replace("-", "_")
    exact = [k for k in keys if k.replace(".", "") == low.replace(".", "") or k.replace(".", "_") == low]
    if exact:
        return exact[0]
    leaf = [k for k in keys if k.split(".")[1] == low]
    if len(leaf) == 1:
        return leaf[0]
    close = close_matches(low, [k.replace(".", "") for k in keys], cutoff=0.85)
    return next((k for k in keys if close and k.replace(".", "") == close[0]), None)


def check_range(key: str, value: Any, meta: dict, where: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"config key '{key}'{where}: {value} is below the minimum {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"config key '{key}'{where}: {value} is above the maximum {meta['max']}")
    if "gt" in meta and value <= meta["gt"]:
        raise ConfigError(f"config key '{key}'{where}: {value} must be greater than {meta['gt']}")


def show(value: Any, limit: int = 60) -> str:
    """A bounded rendering of a bad value: never expands a YAML alias bomb, never echoes megabytes."""
    import reprlib

    if isinstance(value, (list, dict, tuple, set)):
        r = reprlib.Repr()
        r.maxlevel, r.maxlist, r.maxdict, r.maxstring, r.maxother = 2, 4, 4, 20, 20
        text = f"{type(value).__name__} {r.repr(value)}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_finite(key: str, value: Any, where: str) -> None:
    import math

    items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
    for v in items:
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"config key '{key}'{where}: expected a finite number, got {v}")


def _mapping_hint(value, tp) -> str:
    """Where a mapping (data.event_weights) is refused: its first key or value at fault and how to write it (a
    review: '{yes: 1}' was "got dict {True: 1}", and '{view: abc}' named no key)."""
    if typing.get_origin(tp) not in (Union, types.UnionType) or not isinstance(value, dict) or \
            not any(typing.get_origin(arg) is dict for arg in typing.get_args(tp)):  # (a mapping key's only)
        return ""
    for k, v in value.items():
        if isinstance(k, bool) or k is None:
            return (f": the key {k!r} is YAML's reading of an unquoted yes, no, on, off, true, false or null; quote "
                    f"the event type, {{\"yes\": 1}}")
        if not isinstance(k, (str, int)):
            return f": the key {k!r} is no text; quote it, {{\"{k}\": {v!r}}}"
        if isinstance(v, bool) or not isinstance(v, (int, float)) and v is not None:
            return f": {str(k)!r} weighs {show(v)}, not a number"
        if v is None and isinstance(k, str) and ":" in k:  # '{view:1,purchase:5}': YAML reads 'view:1' as a key
            # without a value where ':' has no space after it (a first-hour review, as lists are written [a,b])
            fixed = ", ".join(_weighed(str(key), w) for key, w in value.items())
            if len(fixed) > 100:  # (none cut short: what is pasted must read back)
                fixed = _weighed(k, None)
            return (f": the key {k!r} holds its weight, as YAML reads a ':' with no space after it; write a space "
                    f"after each ':', {{{fixed}}}")
        if v is None:
            return f": {str(k)!r} has no weight; give each event type a number, {{{k!r}: 1}}"
    return ""


def _weighed(key: str, weight) -> str:
    """One entry of an event-weights mapping as YAML reads it back: a key given without a weight that holds one
    after its last ':' ('view:1') split there (its weight 'W' where none follows: 'buy:'), a key holding a ':'
    quoted ('"page:view": 1')."""
    if weight is None and ":" in key:
        key, weight = (part.strip() for part in key.rsplit(":", 1))
    shown = f'"{key}"' if ":" in key else key
    return f"{shown}: {'W' if weight in (None, '') else weight if isinstance(weight, str) else f'{weight:g}'}"


def _number_hint(value) -> str:
    """What a number written in a form the loader keeps as text (unique_keys_loader) should be written as."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    if re.fullmatch(r"[-+]?0[0-9_]+", text):
        sign = "-" if text.startswith("-") else ""
        return f" (a leading zero, which YAML 1.1 reads as octal: write {sign}{text.lstrip('+-').lstrip('0_') or '0'})"
    if re.fullmatch(r"[-+]?0[xXoObB][0-9a-fA-F_]+|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?", text):
        return " (write the number in plain decimal)"
    return ""


def _list_hint(key: str, value: Any, tp: Any, where: str) -> str:
    """How a list is written, where a list was expected and one value or '5,10' came (a first-hour review:
    ``--set train.eval_k=5,10`` was refused without saying how)."""
    kinds = typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else (tp,)
    lists = [typing.get_args(k)[0] for k in kinds if typing.get_origin(k) is list]
    if not lists or not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return ""
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else [str(value)]
    item = r"[+-]?\d+" if lists[0] is int else r"[+-]?[\d.]+(e[+-]?\d+)?" if lists[0] is float else r"[\w.+-]+"
    if not all(re.fullmatch(item, p, re.I) for p in parts):
        return ""
    items = ", ".join(parts)
    if "--set" in where:
        return f": a list goes in brackets, «--set '{key}=[{items}]'|{{'{key}': [{items}]}}»"
    return f": a list goes in brackets, {key.rsplit('.', 1)[-1]}: [{items}]"


def _choices(tp: Any) -> tuple:
    """The words a field's type names (its Literal's values, in a Union too): 'bpr' of model.loss's."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        return tuple(v for arg in typing.get_args(tp) for v in _choices(arg))
    return ()


def _sibling_hint(prefix: str, name: str, value: Any, hints: dict, fields: dict, where: str) -> str:
    """'; 'bpr' is a value of model.loss: --set model.loss=bpr' where ``value``, refused for ``name``, is one of the
    words another key of the same section takes (a first-hour review: model.objective=bpr was refused listing
    explicit and implicit alone, bpr being a loss); said as a --set, an override, updated() or a file writes it.
    'auto' and the like, which many keys take, are no hint; '' where none is."""
    if not isinstance(value, str) or isinstance(value, bool) or value == "auto":
        return ""
    keys = [other for other in fields if other != name and value in _choices(hints.get(other))]
    if not keys:
        return ""
    dotted = [f"{prefix}{k}" for k in keys]
    if "--set" in where:
        how = " or ".join(f"«--set {d}={value}|{{'{d}': {value!r}}}»" for d in dotted)
    elif "updated()" in where:
        how = " or ".join(f"{{'{d}': {value!r}}}" for d in dotted)
    else:  # a config file: nested
        section = prefix.rstrip(".")
        how = " or ".join(f"{section}: {{{k}: {value}}}" if section else f"{k}: {value}" for k in keys)
    return f"; {value!r} is a value of {' and '.join(dotted)}: {how}"


def apply_values(obj: Any, values: dict, prefix: str, where: str) -> None:
    """Set fields of dataclass obj from a mapping, validating keys, types and ranges."""
    if not isinstance(values, dict):
        raise ConfigError(f"config key '{prefix.rstrip('.') or '<top>'}'{where}: expected a mapping of keys, "
                          f"got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(obj) if not f.metadata.get("internal")}
    hints = typing.get_type_hints(type(obj))
    for name, value in values.items():
        key = f"{prefix}{name}"
        if name not in fields:
            dotted = _dotted_guess(obj, str(name)) if not prefix else None
            if dotted:  # a --set, an override or updated() writes it dotted; a file, nested
                nested = f"{dotted.split('.')[0]}: {{{dotted.split('.')[1]}: ...}}"
                in_file = where.lstrip().startswith("in ")  # ' in FILE:LINE'
                hint = f"; a config file nests its keys: {nested}" if dotted == str(name) else \
                    f"; did you mean '{dotted}'? ({nested if in_file else 'keys are written section.key'})"
            else:
                hint = alias_hint(key) or suggest(str(name), list(fields), prefix)
            raise ConfigError(f"unknown config key '{key}'{where}{hint}")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            apply_values(current, value if value is not None else {}, key + ".", where)
            continue
        tp = hints[name]
        try:
            coerced = coerce(value, tp)
        except TypeError:
            raise ConfigError(f"config key '{key}'{where}: expected {type_name(tp)}, got {show(value)}"
                              f"{_mapping_hint(value, tp)}{_number_hint(value)}{_list_hint(key, value, tp, where)}"
                              f"{_sibling_hint(prefix, name, value, hints, fields, where)}") from None
        check_finite(key, coerced, where)
        check_range(key, coerced, fields[name].metadata, where)
        object.__setattr__(obj, name, coerced)  # frozen once built: only the builder writes


def unique_keys_loader():
    """yaml's SafeLoader, except that a key given twice in one mapping is an error (safe_load keeps the last and
    drops the first silently: a second ``train:`` section would discard the first one's settings)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *defaults' (a red team: refused as bad
                    continue  # syntax): merged by the base class, whose keys this mapping's own may override
                key = self.construct_object(key_node, deep=deep)
                try:
                    dup = key in seen
                except TypeError:  # an unhashable key: the base class reports it
                    break
                if dup:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key '{key}' appears twice in one mapping; keep one of them (merge their "
                        "settings)", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    # numbers in plain decimal only: YAML 1.1's 017 (octal: 15), 1:00 and 1:00.5 (base 60: 60, 60.5), 0b11 and 0x10
    # were taken silently (a red team); they stay text, which the key's type then refuses by name
    numeric = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    UniqueKeyLoader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in numeric]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    UniqueKeyLoader.add_implicit_resolver(numeric[0], re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789"))
    UniqueKeyLoader.add_implicit_resolver(numeric[1], re.compile(  # PyYAML's, without its base-60 form
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))
    return UniqueKeyLoader


def nest(key: str, value: Any) -> dict:
    out: dict = {}
    cur = out
    parts = key.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out
