"""One typed config shared by every subcommand.

Precedence: dataclass defaults < YAML file < ``--set section.key=value`` < explicit CLI flags.
Values are parsed with a ``yaml.SafeLoader`` (keys once per mapping; numbers in decimal only) and nothing else.
Unknown keys, wrong types and out-of-range values raise
:class:`ConfigError` naming the key and, where one is close, the valid key meant.

Here: the whole config, ``Config`` (one frozen section per top-level key; ``updated``, ``to_yaml``), and how one
is built: ``load_config`` and ``load_unsplit`` (a YAML file, its errors said at the key's line, then the
overrides, ``parse_override``'s ``--set`` texts), the file a command reads (``find_config``), ``config_from_dict``
and ``set_explicit``. Its modules, in import order, each importing only those before it: ``config_values.py``
(what any key is checked for), ``config_sections.py`` (each section's dataclass, public here too: ``from
embedrec.config import DataConfig``), ``config_keys.py`` (dotted keys, the keys that change no metric, the path
keys and the folders named after the data), ``config_checks.py`` (what embedrec's own keys must hold together),
this one, and ``config_ingest.py`` (the settings a dataset was ingested with, read by the commands that use it).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedrec.config_checks import _check_consistency, _empty_path
from embedrec.config_keys import (
    DERIVED_NOTES,
    PATH_KEYS,
    _derived_folders,
    _flat_keys,
    _rebase_paths,
    flatten,
    noted_folders,
    resolve_paths,
)
from embedrec.config_sections import (
    ColumnsConfig,  # noqa: F401 (public here, as the other sections are)
    DataConfig,
    FeaturesConfig,
    IndexConfig,
    ModelConfig,
    RecommendConfig,
    RunConfig,
    SplitConfig,
    TrainConfig,
    TuneConfig,
    frozen_hint,
)
from embedrec.config_values import apply_values, nest, unique_keys_loader
from embedrec.errors import ConfigError, shorten

# yaml is imported where a file, a --set or a dump needs it: a bare `embedrec recommend` never loads it


@dataclass(frozen=True)
class Config:
    """The whole config: one frozen section per top-level key of the YAML file."""

    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    recommend: RecommendConfig = field(default_factory=RecommendConfig)
    run: RunConfig = field(default_factory=RunConfig)
    # the dotted keys the user gave (a config file, --set, updated()): a folder given is kept, a default is named
    # after the data (resolve_paths); not a config key, not written by to_dict, carried by dataclasses.replace
    explicit_keys: frozenset = field(default=frozenset(), repr=False, compare=False, metadata={"internal": True})
    # those of them given by --set, an override or updated(), not by a config file (a file's default values, as
    # `embedrec config` writes them, are not a choice to warn about: ingest_settings_warning)
    set_keys: frozenset = field(default=frozenset(), repr=False, compare=False, metadata={"internal": True})
    # the config file it was read from (absolute; -c, $EMBEDREC_CONFIG or ./embedrec.yaml), None for the defaults
    # alone: a notebook's er.load_config() says which file it found (a review: it read ./embedrec.yaml silently)
    source: str | None = field(default=None, repr=False, compare=False, metadata={"internal": True})

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        del out["explicit_keys"], out["set_keys"], out["source"]
        return out

    def is_set(self, key: str) -> bool:
        """Whether the dotted ``key`` was given (a config file, --set, updated()) rather than left at its default."""
        return key in self.explicit_keys


    def updated(self, values: dict[str, Any]) -> Config:
        """A new Config with dotted keys replaced, validated like a config file: ``cfg.updated({"train.lr":
        0.01, "model.dim": 32})``. Sections are frozen; this (or :func:`load_config`'s overrides) is how a
        config changes, so a config handed to a function never changes under its caller."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"updated() takes a mapping {{'section.key': value}}, not {type(values).__name__}; "
                              "for 'section.key=value' texts use load_config(path, [...])")
        new = copy.deepcopy(self)
        nested: dict = {}
        for key, value in values.items():
            node = nested
            *parents, leaf = str(key).split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        apply_values(new, nested, "", " (from updated())")
        # the keys given are the caller's choice: a folder given is kept, and a new data.source (or data.prepared)
        # names the folders not chosen again; other keys leave every folder as it is
        given = set(_flat_keys(nested))
        _check_consistency(new, self.set_keys | given)
        object.__setattr__(new, "explicit_keys", self.explicit_keys | given)
        object.__setattr__(new, "set_keys", self.set_keys | given)
        if given & {"data.source", "data.prepared"}:
            resolve_paths(new)
        return new

    def to_yaml(self, chosen: dict[str, str] | None = None) -> str:
        """The config as YAML; ``chosen``: {'section.key': text} of ``auto`` values a run resolved, each said in a
        comment after its ``auto`` (``als_unobserved: auto  # this run: 0.2267``), which stays: a rerun chooses
        again, as this run did (a run's config.yaml: docs/commands.md, train). A folder the config did not set,
        named after the data, is noted so (``dir: runs/ml-100k  # named after data.prepared``): the file read back
        names it again from its data, where a folder written without the note is kept as given."""
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)
        notes = {k: v for k, v in DERIVED_NOTES.items() if k not in self.explicit_keys}
        out, section, lines = [], "", text.splitlines()
        for i, line in enumerate(lines):
            if line and not line.startswith(" "):
                section = line.split(":", 1)[0]
            elif line.startswith("  ") and not line.startswith("   "):
                key = f"{section}.{line.strip().split(':', 1)[0]}"
                said = (chosen or {}).get(key) if line.endswith(": auto") else None
                if said is not None:
                    line += f"  # this run: {said}"
                elif key in notes and not (i + 1 < len(lines) and lines[i + 1].startswith("   ")):  # (not a
                    # long path with spaces, which YAML folds onto the next line)
                    line += f"  # {notes[key]}"
            out.append(line)
        return "\n".join(out) + "\n"


frozen_hint(Config, None)  # cfg.model = ...: the same pointer to cfg.updated as a section's field


def parse_override(text: str) -> tuple[str, Any]:
    """'a.b=v' -> ('a.b', v read as YAML, as a file's values are); a path key's value is the text as given (null:
    none)."""
    if not isinstance(text, str):  # a review: load_config(None, [5]) raised a TypeError from here
        raise ConfigError(f"«--set|override» {shorten(repr(text), 60)}: expected a 'section.key=value' text, e.g. "
                          f"«--set train.lr=0.01|'train.lr=0.01'», not {type(text).__name__}")
    if "=" not in text:
        raise ConfigError(f"«--set|override» '{text}': expected section.key=value, e.g. «--set train.lr=0.01»")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"«--set|override» '{text}': the key before '=' is empty")
    if key in PATH_KEYS:  # a path as typed: YAML would drop a ' #...' tail, fold a newline, read 'yes' as True
        text = raw.strip()
        if text == "":  # '--set run.dir=$RUN' with RUN unset: not the default folder, nor null (a red team)
            raise ConfigError(f"config key '{key}' (from «--set|an override»): {_empty_path(key)}")
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":  # quoted as YAML would take it
            return key, text[1:-1]
        return key, None if text in ("", "null", "Null", "NULL") else text
    if key in TEXT_KEYS and raw not in ("", "null", "Null", "NULL"):  # a separator as typed: YAML read '#' as a
        return key, raw  # comment and ' ' as nothing, both null (auto-detect) without a word (a review)
    import yaml

    try:
        value = yaml.load(raw, Loader=unique_keys_loader()) if raw.strip() != "" else None
    except yaml.constructor.ConstructorError as e:  # a key twice in a mapping, a tag it has no constructor for
        tag = "; write a plain value: embedrec builds no objects from !! tags" if "for the tag" in str(e.problem) else ""
        raise ConfigError(f"config key '{key}' (from «--set|an override»): {e.problem}{tag}") from None
    except yaml.YAMLError:
        value = raw
    except Exception as e:  # noqa: BLE001 (a tag YAML cannot apply: '!!float 0x10', '!!bool maybe', '!!timestamp x')
        raise ConfigError(f"config key '{key}' (from «--set|an override»): YAML cannot read {shorten(raw, 60)!r} ({_tag_error(e)}); "
                          "write the value without a !! tag, e.g. 16 or true") from None
    return key, value


def _tag_error(e: Exception) -> str:
    """What a YAML constructor's own exception says of a value it could not build (a KeyError holds the word)."""
    return f"no such value: {e.args[0]!r}" if isinstance(e, KeyError) and e.args else shorten(str(e), 80)


def _at_key_line(message: str, path: str, text: str) -> str:
    """``message`` (a config error about "config key 'K' in PATH") naming the line of PATH where K is written:
    "... in PATH:LINE"; as it was where K's line is not found."""
    m = re.search(r"config key '([^']+)' in " + re.escape(path), message)
    line = _key_lines(text).get(m.group(1)) if m else None
    return message if line is None else message.replace(m.group(0), f"{m.group(0)}:{line}", 1)


def _key_lines(text: str) -> dict[str, int]:
    """{dotted key: its 1-based line} for the mapping keys of a YAML text, in document order (an alias's keys
    under the alias's name too; one that holds itself stops there, and at most 10,000 mappings are read)."""
    import collections

    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except Exception:  # noqa: BLE001 (it loaded before; a second failure only loses the line)
        return {}
    lines: dict[str, int] = {}
    queue = collections.deque([(root, "", frozenset())])
    for _ in range(10_000):
        if not queue:
            break
        node, prefix, above = queue.popleft()
        if not isinstance(node, yaml.MappingNode) or id(node) in above:
            continue
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                lines.setdefault(prefix + str(k.value), k.start_mark.line + 1)
                queue.append((v, f"{prefix}{k.value}.", above | {id(node)}))
    return lines


def _error_line(text: str, mark) -> int:
    """The 1-based line of a YAML error's mark; one found at the end of the text (a key without its ':' on the
    last line) is said at the last line that has text, not the empty line after it (a first-hour review: ':6' in
    a 5-line file)."""
    line = mark.line + 1
    rest = [x.strip() for x in text[mark.index:].splitlines()]
    if all(not x or x.startswith("#") for x in rest):  # nothing but blank and comment lines after it (a review:
        lines = text.splitlines()                      # a trailing comment was named)
        said = [i + 1 for i, x in enumerate(lines) if x.strip() and not x.strip().startswith("#")]
        line = min(line, said[-1] if said else 1)
    return line


def load_config(path: str | Path | None = None, overrides: Iterable[str] | Mapping[str, Any] | None = ()) -> Config:
    """Build the resolved config: defaults, then the YAML file, then each override in order: ``--set`` texts
    (["model.dim=8"]) or a mapping of dotted keys to values ({"model.dim": 8}, as :meth:`Config.updated` takes).

    Folders not set by either are named after the data (see :func:`resolve_paths`)."""
    return _load(path, overrides, split=True)


def load_unsplit(path: str | Path | None = None, overrides: Iterable[str] | Mapping[str, Any] | None = ()) -> Config:
    """:func:`load_config` with the split keys' shares and folds left unchecked, for a caller that checks them in
    its own terms before the config is used: cross-validate, whose K is its --folds (``crossval.command_config``:
    split.valid is checked with the test fold's 1/K there, not with split.test, which a cross-validation does not
    use). Every other key is checked as load_config checks it."""
    return _load(path, overrides, split=False)


def _load(path, overrides, split: bool) -> Config:
    cfg = Config()
    explicit: set[str] = set()
    sources: dict[str, str] = {}  # where each key set was given, for a consistency error about it
    overridden: set[str] = set()  # the keys an override gave (Config.set_keys)
    if path is not None and not isinstance(path, (str, os.PathLike)):
        settings = (f"; settings go second, load_config(None, {str(path)[:60]})" if isinstance(path, Mapping) else
                    "")  # (a notebook review: load_config({'model.dim': 64}) said nothing of where they go)
        raise ConfigError(f"load_config: path {type(path).__name__} {str(path)[:60]!r} is not a file path; pass the "
                          f"YAML file's path (a str or Path), or None for the defaults{settings}")
    if path is not None:
        if str(path) == "":  # Path('') is '.', a folder (a review): an unset variable, most likely
            raise ConfigError("load_config: the path is empty (an unset variable?); pass the YAML file's path, or "
                              "None for the defaults")
        p = Path(path)
        if p.is_dir():
            raise ConfigError(f"config file '{p}' is a folder; pass a YAML file «with -c|as the path»")
        shipped = Path(__file__).resolve().parents[1] / "configs" / p.name  # the checkout's, where it is one
        if not p.exists() and p.parent == Path("configs") and shipped.is_file():
            # 'configs/NAME.yaml' as every -h example writes it, from another folder than the checkout (a first-hour
            # review): the shipped config of that name, and said so
            import logging

            logging.getLogger("embedrec").info("config file '%s' is not in this folder: reading the shipped one, %s",
                                               p, shipped)
            p = shipped
        if not p.exists():  # not is_file(): -c /dev/null (no overrides) and -c <(...) are read like files
            from embedrec.fsutil.files import loop_error

            loop = loop_error(p, "config file", "pass an existing YAML file «with -c|as the path», or «leave -c out|pass "
                              "None» to use the defaults", ConfigError)  # said as a loop, not 'does not exist'
            if loop is not None:
                raise loop
            if str(path) == "-":  # a shell review: `embedrec config | embedrec recommend -c -`
                raise ConfigError("config file '-': standard input is read as a config file named /dev/stdin «(-c "
                                  "/dev/stdin)|(load_config('/dev/stdin'))»; no file is named '-' here")
            there = (f" (the shipped configs are in the embedrec checkout: {shipped})"
                     if not p.is_absolute() and p.parent.name == "configs" and shipped.is_file() else "")
            raise ConfigError(f"config file '{p}' does not exist{there}; pass an existing YAML file «with -c|as the "
                              "path», or «leave -c out|pass None» to use the defaults")
        import yaml

        try:
            with open(p, "rb") as fh:  # at most a little more than a config can be: -c /dev/zero is no config
                data = fh.read(CONFIG_MAX + 1)
        except OSError as e:
            raise ConfigError(f"config file '{p}' cannot be read ({e.strerror}); pass a readable YAML file") from None
        if len(data) > CONFIG_MAX:
            raise ConfigError(f"config file '{p}' is larger than {CONFIG_MAX >> 20} MiB, far more than a config; "
                              "pass the YAML config file «with -c|as the path»")
        try:
            text = data.decode("utf-8")
            raw = yaml.load(text, Loader=unique_keys_loader())
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            loc = f":{_error_line(text, mark)}" if mark is not None else ""
            problem = getattr(e, "problem", None) or "invalid YAML"
            raise ConfigError(f"config file '{p}{loc}': {problem}; fix the YAML syntax there") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file '{p}' is not UTF-8 text; save it as UTF-8") from None
        except RecursionError:  # 50,000 nested brackets: the composer's recursion
            raise ConfigError(f"config file '{p}' is nested too deeply to be a config; fix the YAML") from None
        except ValueError as e:
            if "digits" not in str(e):  # Python's limit on an integer's digits (a red team: 100,000 nines)
                raise ConfigError(f"config file '{p}': YAML cannot build a value it tags ({_tag_error(e)}); write the "
                                  "value without a !! tag (e.g. epochs: 20, not !!int abc)") from None
            raise ConfigError(f"config file '{p}': a number too long to read ({_tag_error(e)}); no "
                              "config key takes one, fix the value") from None
        except Exception as e:  # noqa: BLE001 (a tag YAML cannot apply: a red team found internal errors)
            raise ConfigError(f"config file '{p}': YAML cannot build a value it tags ({_tag_error(e)}); write the "
                              "value without a !! tag (e.g. epochs: 20, not !!int abc)") from None
        if raw is not None:
            try:
                if isinstance(raw, dict):  # top-level x-* keys: YAML anchors' home (docker compose's extension
                    raw = {k: v for k, v in raw.items()  # fields), merged elsewhere with '<<: *name'; not config
                           if not (isinstance(k, str) and k.startswith("x-"))}
                    raw = _rebase_paths(raw, p.parent)
                    explicit.update(_flat_keys(raw))
                    sources.update(dict.fromkeys(_flat_keys(raw), f" in {p}"))
                apply_values(cfg, raw, "", f" in {p}")
                if isinstance(raw, dict):  # a folder `embedrec config` named after the data, noted so: named again
                    noted = noted_folders(text, _key_lines(text)) if "# named after" in text else set()
                    explicit -= _derived_folders(cfg, noted, _flat_keys(raw))
            except ConfigError as e:  # the key's line too, as a YAML error says it (a first-hour review)
                raise ConfigError(_at_key_line(e.raw, str(p), text)) from None
            except RecursionError:  # an alias that holds itself (train: &a {x: *a})
                raise ConfigError(f"config file '{p}' holds a mapping that contains itself (a YAML alias to its "
                                  "own anchor) or is nested too deeply; fix the YAML") from None
    pairs = overrides.items() if isinstance(overrides, Mapping) else map(parse_override, _override_texts(overrides))
    for key, value in pairs:
        nested = nest(str(key), value)
        apply_values(cfg, nested, "", " (from «--set|an override»)")
        explicit.update(_flat_keys(nested))
        overridden.update(_flat_keys(nested))
        sources.update(dict.fromkeys(_flat_keys(nested), " (from «--set|an override»)"))
    try:
        _check_consistency(cfg, overridden, split)
    except ConfigError as e:  # where the key was given, as a type error says it (a first-hour review)
        text = e.raw  # (its marks as written: str(e) is the library's terms)
        m = re.match(r"config key '([^']+)': ", text)
        if m is None or m.group(1) not in sources:
            raise
        raise ConfigError(text.replace(m.group(0), f"config key '{m.group(1)}'{sources[m.group(1)]}: ", 1)) from None
    object.__setattr__(cfg, "explicit_keys", frozenset(explicit))
    object.__setattr__(cfg, "set_keys", frozenset(overridden & explicit))
    object.__setattr__(cfg, "source", os.path.abspath(path) if path is not None else None)
    resolve_paths(cfg)
    return cfg


def _override_texts(overrides) -> Iterable[str]:
    """``load_config``'s overrides when not a mapping: 'section.key=value' texts (one text alone is one override,
    not its characters; None: none, as the default ``()``); anything else is a ConfigError naming the argument (a
    review: load_config(None, 5) raised a TypeError)."""
    if overrides is None:
        return ()
    if isinstance(overrides, str):
        return (overrides,)
    if isinstance(overrides, (bytes, bytearray)) or not isinstance(overrides, Iterable):
        raise ConfigError(f"load_config: overrides must be a mapping {{'section.key': value}} or a list of "
                          f"'section.key=value' texts, e.g. ['model.dim=64'], not {type(overrides).__name__}")
    return overrides


# ------------------------------------------------------------------------------------------------ discovery

CONFIG_ENV = "EMBEDREC_CONFIG"
CONFIG_MAX = 1 << 20  # bytes: a config file is a few KB
DISCOVERED = "embedrec.yaml"
TEXT_KEYS = ("data.separator", "data.movies_separator", "data.genre_separator", "data.decimal")  # one character each, taken from --set as typed


def find_config(path: str | Path | None) -> str | Path | None:
    """The config file a command uses: -c PATH, else $EMBEDREC_CONFIG, else ./embedrec.yaml, else None
    (the built-in defaults)."""
    if path is not None:
        return path
    env = os.environ.get(CONFIG_ENV, "").strip()
    if env:
        if not Path(env).exists():
            raise ConfigError(f"config file '{env}' (from ${CONFIG_ENV}) does not exist; fix or unset ${CONFIG_ENV}")
        return env
    if Path(DISCOVERED).is_file():
        return DISCOVERED
    if Path(DISCOVERED).exists():  # a folder of that name: refused as $EMBEDREC_CONFIG naming a folder is
        raise ConfigError(f"./{DISCOVERED} is not a file (a folder?), so it cannot be the config found in the "
                          "current folder; rename it, or name a config with -c FILE")
    if Path(DISCOVERED).is_symlink():  # a link to nothing: refused as -c or $EMBEDREC_CONFIG naming it is (a red
        raise ConfigError(f"./{DISCOVERED} is a link to '{os.readlink(DISCOVERED)}', which does not exist, so the "
                          "config found in the current folder cannot be read; fix or remove the link")  # team: ignored)
    return None


def flat_config(cfg: Config) -> dict:
    """The resolved config as {dotted key: value}, e.g. for comparing what two processes were given."""
    return flatten(cfg.to_dict())


def set_explicit(cfg: Config, key: str, value: Any) -> Config:
    """A copy of ``cfg`` with one dotted key set as the user gave it (e.g. a CLI argument); the folders not set
    explicitly are named again from it."""
    return cfg.updated({key: value})


def config_from_dict(values: dict) -> Config:
    """Rebuild a Config from a saved dict (e.g. a run's resolved config), validating as usual. Its folders are
    kept as saved (resolved already): an ``updated()`` of it does not name them again from data.source."""
    cfg = Config()
    apply_values(cfg, values, "", " (saved config)")
    object.__setattr__(cfg, "explicit_keys", frozenset({"data.prepared", "run.dir"}))
    return cfg
