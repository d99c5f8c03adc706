import re
from pathlib import Path

import pytest

from embedrec.config import Config, load_config, parse_override
from embedrec.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_default_yaml_equals_builtin_defaults():
    assert load_config(ROOT / "configs" / "default.yaml").to_dict() == Config().to_dict()


def test_default_yaml_documents_every_key():
    text = (ROOT / "configs" / "default.yaml").read_text()
    for section, values in Config().to_dict().items():
        for key, value in values.items():
            line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{key}:"))
            assert "#" in line, f"{section}.{key} has no comment"
            if isinstance(value, dict):
                for sub in value:
                    assert any(ln.strip().startswith(f"{sub}:") and "#" in ln for ln in text.splitlines())


def test_precedence_file_then_set(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  lr: 0.5\n  epochs: 3\n")
    cfg = load_config(p, ["train.lr=0.25", "model.dim=auto", "data.rating_scale=[1, 10]"])
    assert cfg.train.lr == 0.25 and cfg.train.epochs == 3
    assert cfg.model.dim == "auto" and cfg.data.rating_scale == [1.0, 10.0]


def test_overrides_as_a_mapping_like_updated():
    """er.load_config(None, {"model.dim": 8}) failed with "expected section.key=value": a mapping is taken as
    Config.updated takes one, dotted or nested, and a key set so is not renamed after the data."""
    import embedrec as er

    cfg = er.load_config(None, {"model.dim": 8, "train.lr": 0.25, "run": {"dir": "runs/mine"}})
    assert (cfg.model.dim, cfg.train.lr, cfg.run.dir) == (8, 0.25, "runs/mine")
    assert cfg.to_dict() == load_config(None, ["model.dim=8", "train.lr=0.25", "run.dir=runs/mine"]).to_dict()
    with pytest.raises(ConfigError) as e:
        er.load_config(None, {"model.dim": 0})
    assert str(e.value) == "config key 'model.dim' (from an override): 0 is below the minimum 1"


def test_unknown_key_suggests_closest(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(None, ["train.lrr=0.1"])
    assert str(e.value) == "unknown config key 'train.lrr' (from an override); did you mean 'train.lr'?"
    assert e.value.cli_message() == "unknown config key 'train.lrr' (from --set); did you mean 'train.lr'?"
    p = tmp_path / "c.yaml"
    p.write_text("trian:\n  lr: 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value) == f"unknown config key 'trian' in {p}:1; did you mean 'train'?"
    # a dotted key without its dot, or its leaf alone (a first-hour review: 'modeldim' got 'model')
    for given, meant in (("modeldim", "model.dim"), ("model_dim", "model.dim"), ("epochs", "train.epochs")):
        with pytest.raises(ConfigError) as e:
            load_config(None, [f"{given}=3"])
        assert e.value.cli_message() == (f"unknown config key '{given}' (from --set); did you mean '{meant}'? (keys "
                                         "are written section.key)")
    p.write_text("dim: 8\n")
    with pytest.raises(ConfigError, match=r"did you mean 'model.dim'\? \(model: \{dim: \.\.\.\}\)$"):
        load_config(p)
    p.write_text("model.dim: 8\n")  # the dotted key itself in a file: not 'did you mean' itself (a review)
    with pytest.raises(ConfigError, match=r"'model.dim' in .*:1; a config file nests its keys: model: \{dim: \.\.\.\}$"):
        load_config(p)
    with pytest.raises(ConfigError, match=r"\(from updated\(\)\); did you mean 'model.dim'\? \(keys are written "):
        load_config(None, []).updated({"dim": 3})
    # the key's own line, as a YAML syntax error names its line (a first-hour review: the file alone)
    p.write_text("# mine\nmodel:\n  dim: 8\ntrain: &t\n  lr: 0.1\n  epochs: -3\nmore: *t\n")
    with pytest.raises(ConfigError, match=rf"^config key 'train.epochs' in {re.escape(str(p))}:6: -3 is below"):
        load_config(p)
    p.write_text("model:\n  dim: 8\n  dimm: 8\n")
    with pytest.raises(ConfigError, match=rf"^unknown config key 'model.dimm' in {re.escape(str(p))}:3; did you"):
        load_config(p)


def test_wrong_type_and_range():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["train.epochs=many"])
    assert str(e.value) == "config key 'train.epochs' (from an override): expected an integer, got 'many'"
    with pytest.raises(ConfigError) as e:
        load_config(None, ["train.lr=-1"])
    assert str(e.value) == "config key 'train.lr' (from an override): -1.0 must be greater than 0.0"
    with pytest.raises(ConfigError) as e:
        load_config(None, ["model.objective=ranking"])
    assert "expected one of 'explicit', 'implicit'" in str(e.value)
    with pytest.raises(ConfigError, match="must leave data for training"):
        load_config(None, ["split.valid=0.5", "split.test=0.5"])


def test_a_value_of_a_sibling_key_names_that_key(tmp_path):
    """A first-hour review: --set model.objective=bpr was refused listing explicit and implicit alone; bpr is a
    loss. A value refused for one key but taken by another of its section names that key, as the CLI, an override,
    updated() and a config file write it; 'auto', which many keys take, and a word no sibling takes, are no hint."""
    from embedrec.errors import cli_terms

    with pytest.raises(ConfigError) as e:
        load_config(None, ["model.objective=bpr"])
    assert str(e.value) == ("config key 'model.objective' (from an override): expected one of 'explicit', "
                            "'implicit', got 'bpr'; 'bpr' is a value of model.loss: {'model.loss': 'bpr'}")
    assert e.value.cli_message() == ("config key 'model.objective' (from --set): expected one of 'explicit', "
                                     "'implicit', got 'bpr'; 'bpr' is a value of model.loss: --set model.loss=bpr")
    with pytest.raises(ConfigError) as e:
        load_config(None, ["model.loss=explicit"])
    assert cli_terms(e.value.raw).endswith("; 'explicit' is a value of model.objective: --set model.objective=explicit")
    with pytest.raises(ConfigError) as e:
        load_config(None).updated({"model.objective": "bpr"})
    assert str(e.value).endswith("got 'bpr'; 'bpr' is a value of model.loss: {'model.loss': 'bpr'}")
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  objective: bpr\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(e.value).endswith("got 'bpr'; 'bpr' is a value of model.loss: model: {loss: bpr}")
    for bad in ("split.method=als", "model.objective=auto", "train.optimizer=mse"):  # another section's, or many's
        with pytest.raises(ConfigError) as e:
            load_config(None, [bad])
        assert "is a value of" not in str(e.value)
    with pytest.raises(ConfigError, match="'train.metric'"):
        load_config(None, ["train.metric=ndcg"])
    for bad in ("[0]", "[256, 5000]"):
        with pytest.raises(ConfigError) as e:
            load_config(None, [f"train.als_dims={bad}"])
        assert str(e.value).startswith("config key 'train.als_dims' (from an override): expected auto or a list of "
                                       "dimensions from 1 to "
                                       "4096, got list [")
    with pytest.raises(ConfigError, match="'train.als_dims' .from an override.: expected a list of integers or "
                                          "'auto', got 'big'"):
        load_config(None, ["train.als_dims=big"])
    assert load_config(None, ["train.als_dims=[]"]).train.als_dims == []


def test_override_parsing_is_safe():
    with pytest.raises(ConfigError, match="could not determine a constructor for the tag .*python/object:os.system.*; "
                                          "write a plain value: embedrec builds no objects from !! tags"):
        parse_override("a.b=!!python/object:os.system x")  # refused, never built
    assert parse_override("a.b=[1,2]") == ("a.b", [1, 2])
    with pytest.raises(ConfigError):
        parse_override("no-equals")


def test_bad_yaml_names_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  lr: [1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+"):
        load_config(p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("tail", ["\n", "", "\n\n  \n", "\n# the end\n", "\n  # indented\n\n"])  # a review: a comment
def test_bad_yaml_on_last_line_names_that_line(tmp_path, tail):
    # a first-hour review: a missing ':' on line 5 of a 5-line file was reported at line 6 (the end of the stream)
    p = tmp_path / "bad2.yaml"
    p.write_text("model:\n  dim: 32\ntrain:\n  epochs: 3\n  lr 0.1" + tail)
    with pytest.raises(ConfigError, match=r"bad2.yaml:5': could not find expected ':'"):
        load_config(p)


def test_sections_are_frozen_and_updated_makes_a_validated_copy():
    import dataclasses

    from embedrec.config import set_explicit

    cfg = load_config(None, ["train.lr=0.01"])
    # the error says how a config changes (a notebook review: the dataclass's bare "cannot assign to field 'lr'")
    for change, key in ((lambda: setattr(cfg.train, "lr", 0.5), "train.lr"),
                        (lambda: setattr(cfg.data.columns, "user", "u"), "data.columns.user"),
                        (lambda: delattr(cfg.model, "dim"), "model.dim"), (lambda: setattr(cfg, "run", None), "run.KEY")):
        with pytest.raises(dataclasses.FrozenInstanceError, match=re.escape(f"cfg.updated({{{key!r}: value}})")):
            change()
    assert cfg.train.lr == 0.01 and dataclasses.replace(cfg.model, dim=8).dim == 8  # (replace builds a new one)
    new = cfg.updated({"train.lr": 0.02, "model.dim": 16})
    assert (new.train.lr, new.model.dim) == (0.02, 16) and (cfg.train.lr, cfg.model.dim) == (0.01, 128)
    with pytest.raises(ConfigError, match="config key 'train.lr' \\(from updated\\(\\)\\): -1.0 must be greater"):
        cfg.updated({"train.lr": -1.0})
    with pytest.raises(ConfigError, match="unknown config key 'train.lrr'"):
        cfg.updated({"train.lrr": 1})
    moved = set_explicit(cfg, "data.source", "my.csv")  # the derived folders follow, on the copy only
    assert (moved.data.prepared, moved.run.dir) == ("data/prepared/my", "runs/my")
    assert (cfg.data.source, cfg.data.prepared) == ("ml-100k", "data/prepared/ml-100k")


def test_the_keys_given_are_a_declared_field_that_replace_keeps_and_no_file_can_set(tmp_path):
    """Which keys the user gave was an attribute set behind the dataclass: dataclasses.replace (which
    ARCHITECTURE.md suggests, and the selection uses) dropped it, so a run folder given was named again."""
    import dataclasses

    cfg = load_config(None, ["run.dir=/tmp/mine", "train.lr=0.01"])
    assert cfg.is_set("run.dir") and cfg.is_set("train.lr") and not cfg.is_set("model.dim")
    kept = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=3))
    assert kept.is_set("run.dir") and kept.explicit_keys == cfg.explicit_keys
    assert kept.updated({"data.source": "my.csv"}).run.dir == "/tmp/mine"  # given, so kept
    assert "explicit_keys" not in cfg.to_dict() and "explicit_keys" not in cfg.to_yaml()
    assert "explicit_keys" not in repr(cfg) and cfg == load_config(None, ["run.dir=/tmp/mine", "train.lr=0.01"])
    (tmp_path / "c.yaml").write_text("explicit_keys: [run.dir]\n")
    with pytest.raises(ConfigError, match="unknown config key 'explicit_keys'"):
        load_config(tmp_path / "c.yaml")


def test_a_key_given_twice_in_the_yaml_is_refused(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  lr: 0.1\ntrain:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"c.yaml:3': key 'train' appears twice"):
        load_config(p)
    p.write_text("train:\n  lr: 0.1\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match="key 'lr' appears twice"):
        load_config(p)
    p.write_text("base: &b {lr: 0.1}\n")  # anchors and the rest of safe YAML still load
    with pytest.raises(ConfigError, match="unknown config key 'base'"):
        load_config(p)


@pytest.mark.parametrize("override, message", [
    ("data.encoding=klingon", "'klingon' is not a text encoding"),
    ("train.metric=rmse", "rmse scores rating predictions"),
    ("train.metric=mae", "mae scores rating predictions"),
])
def test_values_that_would_fail_later_are_refused_up_front(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])
    load_config(None, ["model.objective=explicit", "train.metric=rmse", "data.encoding=latin-1"])


def test_a_folder_given_as_the_config_file(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_dev_null_as_the_config_file_is_no_overrides(tmp_path, monkeypatch):
    """-c /dev/null said "does not exist" (it is no regular file): an empty config, the defaults, as is
    $EMBEDREC_CONFIG=/dev/null; a missing file is still refused."""
    import os

    from embedrec.config import find_config

    assert load_config(os.devnull, ["model.dim=7"]).to_dict() == load_config(None, ["model.dim=7"]).to_dict()
    monkeypatch.setenv("EMBEDREC_CONFIG", os.devnull)
    assert find_config(None) == os.devnull
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    monkeypatch.chdir(tmp_path)  # '-' (a shell review: `embedrec config | embedrec recommend -c -`): /dev/stdin said
    with pytest.raises(ConfigError, match=r"^config file '-': standard input is read as a config file named "
                                          r"/dev/stdin \(load_config\('/dev/stdin'\)\)"):
        load_config("-")


@pytest.mark.parametrize("key", ["als_reg", "als_unobserved", "als_recency", "als_rating_weight", "als_count_weight"])
def test_als_weights_beyond_any_use_are_refused(key):
    # 1e30 made the eigen-solve fail with a LinAlgError, an internal error
    with pytest.raises(ConfigError, match=f"'train.{key}'.*above the maximum 1000"):
        load_config(None, [f"train.{key}=1e30"])


def test_path_values_from_set_are_taken_as_typed(monkeypatch, tmp_path):
    """A red-team pass: --set 'run.dir=hash #2' became 'hash' (a YAML comment) and train republished another run;
    folders named yes/null/2024-01-01 were refused ('expected a string'); '~/r' was a folder named '~'."""
    from embedrec.config import load_config, parse_override

    assert parse_override("run.dir=hash #2") == ("run.dir", "hash #2")
    assert parse_override("data.prepared=yes") == ("data.prepared", "yes")
    assert parse_override("tune.dir=2024-01-01") == ("tune.dir", "2024-01-01")
    assert parse_override("data.movies=null") == ("data.movies", None)
    assert parse_override("run.dir = 'my dir' ") == ("run.dir", "my dir")  # trimmed, YAML's quotes removed
    assert parse_override('run.dir="a b"') == ("run.dir", "a b") and parse_override("run.dir=~") == ("run.dir", "~")
    assert parse_override("train.lr=0.5 # comment") == ("train.lr", 0.5)  # other keys stay YAML
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = load_config(None, ["run.dir=~/runs/x #1", "data.prepared=a\nb"])
    assert cfg.run.dir == str(tmp_path / "runs" / "x #1") and cfg.data.prepared == "a\nb"
    assert load_config(None, ["run.dir=~"]).run.dir == str(tmp_path)


@pytest.mark.parametrize("text, phrase", [
    ("train: &a\n  x: *a\n", "holds a mapping that contains itself"),
    ("train:\n  eval_k: " + "[" * 50000 + "]" * 50000 + "\n", "nested too deeply"),
])
def test_a_self_referencing_or_very_deep_config_is_a_config_error(tmp_path, text, phrase):
    """Both were 'internal error (RecursionError ...)' with exit 1."""
    from embedrec.config import load_config

    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=phrase):
        load_config(p)


def test_seeds_are_checked_when_the_config_is_read():
    """split.seed=-1 passed the config, then ingest failed with 'internal error (ValueError: expected
    non-negative integer)'."""
    from embedrec.config import load_config

    for key in ("split.seed", "train.seed"):
        with pytest.raises(ConfigError, match=f"config key '{key}' \\(from an override\\): -1 is below the minimum 0"):
            load_config(None, [f"{key}=-1"])


def test_a_saved_config_names_the_folders_again_for_another_source(tmp_path, monkeypatch):
    """A review: `embedrec config > saved.yaml` pins data.prepared and run.dir to ml-100k's folders, and
    `ingest mine.csv -c saved.yaml` then wrote mine.csv into data/prepared/ml-100k (with --overwrite, over the
    real one). Folders a file holds exactly as they are named from its own source are named again from the data;
    cfg.updated() with a new source does the same, and a folder given to updated() is kept."""
    from embedrec.config import Config, load_config, set_explicit

    monkeypatch.chdir(tmp_path)
    (tmp_path / "saved.yaml").write_text(load_config().to_yaml())
    cfg = set_explicit(load_config("saved.yaml"), "data.source", "mine.csv")
    assert (cfg.data.prepared, cfg.run.dir) == ("data/prepared/mine", "runs/mine")
    (tmp_path / "chosen.yaml").write_text("data:\n  prepared: data/prepared/keep\n")
    cfg = set_explicit(load_config("chosen.yaml"), "data.source", "mine.csv")
    assert (cfg.data.prepared, cfg.run.dir) == ("data/prepared/keep", "runs/keep")
    cfg = Config().updated({"data.source": "x/ratings.csv"})
    assert (cfg.data.prepared, cfg.run.dir) == ("data/prepared/ratings", "runs/ratings")
    cfg = Config().updated({"data.prepared": "p"}).updated({"data.source": "y.csv"})
    assert (cfg.data.prepared, cfg.run.dir) == ("p", "runs/p")


def test_a_folder_a_file_gives_is_kept_however_it_reads_and_only_a_noted_one_is_named_again(tmp_path, monkeypatch):
    """A first-hour review: a file's `run.dir: ./runs/ml` beside `data.prepared: ./ml` (runs/<the prepared folder's
    name>, as the data would name it) was taken for a derived folder, so `--set data.prepared=ml_moved` trained
    and read runs/ml_moved. Where a folder came from decides, not its value: `embedrec config` notes each folder
    it named after the data, and only a noted one (still at the name the data gives it), or one of a whole file an
    earlier embedrec saved without the notes, is named again."""
    from embedrec.config import load_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "embedrec.yaml").write_text("data:\n  prepared: ./ml\nrun:\n  dir: ./runs/ml\n")
    cfg = load_config("embedrec.yaml", ["data.prepared=ml_moved"])
    assert (cfg.data.prepared, cfg.run.dir) == ("ml_moved", "runs/ml")
    assert load_config("embedrec.yaml").updated({"data.prepared": "x"}).run.dir == "runs/ml"
    saved = load_config().to_yaml()  # the notes, on the two folders the config did not set
    assert [x for x in saved.splitlines() if "# named after" in x] == [
        "  prepared: data/prepared/ml-100k  # named after data.source", "  dir: runs/ml-100k  # named after data.prepared"]
    assert "# named after" not in load_config(None, ["data.prepared=p", "run.dir=r"]).to_yaml()
    assert load_config(None, ["data.prepared=p"]).to_yaml().count("# named after") == 1
    (tmp_path / "saved.yaml").write_text(saved)
    cfg = load_config("saved.yaml", ["data.prepared=ml_moved"])
    assert (cfg.data.prepared, cfg.run.dir) == ("ml_moved", "runs/ml_moved")
    # a noted folder edited is the user's: kept (the note alone names nothing again)
    (tmp_path / "edited.yaml").write_text(saved.replace("dir: runs/ml-100k", "dir: runs/mine"))
    assert load_config("edited.yaml", ["data.source=x.csv"]).run.dir == "runs/mine"
    # a whole config saved before the notes: its folders at the data's names are named again, as before
    (tmp_path / "old.yaml").write_text(saved.replace("  # named after data.source", "").replace(
        "  # named after data.prepared", ""))
    cfg = load_config("old.yaml", ["data.source=mine.csv"])
    assert (cfg.data.prepared, cfg.run.dir) == ("data/prepared/mine", "runs/mine")
    # a small file without them keeps both, even at the names the data would give
    (tmp_path / "small.yaml").write_text("data:\n  prepared: data/prepared/ml-100k\nrun:\n  dir: runs/ml-100k\n")
    cfg = load_config("small.yaml", ["data.source=mine.csv"])
    assert (cfg.data.prepared, cfg.run.dir) == ("data/prepared/ml-100k", "runs/ml-100k")


def test_a_separator_from_set_is_taken_as_typed():
    """A review: --set data.separator=# (YAML: a comment) and --set 'data.separator= ' (YAML: nothing) both became
    null, auto-detection, without a word."""
    from embedrec.config import load_config

    for typed, want in (("#", "#"), (" ", " "), ("tab", "\t"), ("null", None), (";", ";")):
        assert load_config(None, [f"data.separator={typed}"]).data.separator == want
    assert load_config(None, ["data.genre_separator=#"]).data.genre_separator == "#"
    for typed, want in (("#", "#"), ("space", " "), ("\\t", "\t"), ("null", None), (";", ";")):  # the movies file's
        assert load_config(None, [f"data.movies_separator={typed}"]).data.movies_separator == want


def test_a_movies_separator_of_several_characters_is_refused():
    from embedrec.config import load_config

    with pytest.raises(ConfigError, match=r"config key 'data.movies_separator'.*';;' is 2 characters; the movies "
                                          r"file's reader takes one character"):
        load_config(None, ["data.movies_separator=;;"])
    with pytest.raises(ConfigError, match="config key 'data.movies_separator': must not be empty"):
        Config().updated({"data.movies_separator": ""})


def test_a_config_file_larger_than_any_config_is_refused_without_reading_it_all(tmp_path):
    """A red team: `embedrec config -c /dev/zero` read until the kernel killed it (exit 137, no message), and
    /dev/urandom hung. A config is read up to 1 MiB."""
    import pytest

    from embedrec.config import load_config
    from embedrec.errors import ConfigError

    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (1 << 20) + "\n")
    for p in (big, "/dev/zero"):
        with pytest.raises(ConfigError, match=r"is larger than 1 MiB, far more than a config"):
            load_config(p)


def test_index_settings_have_upper_bounds():
    """A review: index.hnsw_m=100000 built 2.6 GB of index files for 1,632 movies, with exit 0."""
    import pytest

    from embedrec.config import load_config
    from embedrec.errors import ConfigError

    for key, value in (("index.hnsw_m", 100000), ("index.ef_search", 10**6), ("index.ef_construction", 10**6),
                       ("features.cross_buckets", 10**13)):  # a red team: train tried to allocate 40 TB
        with pytest.raises(ConfigError, match=f"'{key}'.*is above the maximum"):
            load_config(None, [f"{key}={value}"])
    load_config(None, ["index.hnsw_m=64", "index.ef_search=512", "features.cross_buckets=10000000"])


def test_a_yaml_tag_that_cannot_build_its_value_is_a_config_error(tmp_path):
    """A red team: `--set 'train.lr=!!float 0x10'` and a file's `epochs: !!int abc` were internal errors
    (ValueError, KeyError: 'maybe'); each is one config line, exit 2."""
    from click.testing import CliRunner

    from embedrec.cli import main

    for value, said in (("train.lr=!!float 0x10", "could not convert string to float: '0x10'"),
                        ("train.epochs=!!bool maybe", "no such value: 'maybe'")):
        r = CliRunner().invoke(main, ["config", "--set", value])
        assert (r.exit_code, r.stdout) == (2, "") and r.stderr.splitlines() == [
            f"error: config key '{value.split('=')[0]}' (from --set): YAML cannot read '{value.split('=', 1)[1]}' "
            f"({said}); write the value without a !! tag, e.g. 16 or true"], r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: !!int abc}\n")
    r = CliRunner().invoke(main, ["config", "-c", str(bad)])
    assert (r.exit_code, r.stdout) == (2, "") and r.stderr.splitlines() == [
        f"error: config file '{bad}': YAML cannot build a value it tags (invalid literal for int() with base 10: "
        "'abc'); write the value without a !! tag (e.g. epochs: 20, not !!int abc)"], r.stderr


def test_integers_are_read_as_yaml_1_2_reads_them(tmp_path):
    """A red team: PyYAML's YAML 1.1 took train.epochs=017 as 15 (octal), 1:00 as 60 (base 60), 0b11 as 3 and
    train.lr=0x10 as 16, silently. They stay text, which the key's type refuses by name; plain integers (with
    a sign or underscores), floats and lists read as before, in a file as on the command line."""
    for text in ("017", "1:00", "0b11", "0o17"):
        with pytest.raises(ConfigError, match=f"config key 'train.epochs' \\(from an override\\): expected an "
                                              f"integer, got '{text}'"):
            load_config(None, [f"train.epochs={text}"])
    cfg = load_config(None, ["train.epochs=1_000", "train.lr=1e-3", "model.dim=+64", "train.eval_k=[5, 10]"])
    assert (cfg.train.epochs, cfg.train.lr, cfg.model.dim, list(cfg.train.eval_k)) == (1000, 0.001, 64, [5, 10])
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  epochs: 017\n")
    with pytest.raises(ConfigError, match="train.epochs.*expected an integer, got '017'"):
        load_config(f)
    f.write_text("train:\n  epochs: 17\n  lr: 0.5\n")
    assert (load_config(f).train.epochs, load_config(f).train.lr) == (17, 0.5)


def test_base_60_floats_leading_zeros_and_tags_are_said_plainly():
    """A review: `train.lr=1:00.5` was still 60.5 (YAML 1.1's base 60), `epochs: 010` did not say why it was
    refused, `!!timestamp nope` was an internal error, and a key twice in a --set mapping was 'expected a
    mapping of keys, got str'."""
    cases = {"train.lr=1:00.5": "expected a number or 'auto', got '1:00.5' (write the number in plain decimal)",
             "train.epochs=010": "expected an integer, got '010' (a leading zero, which YAML 1.1 reads as octal: "
                                 "write 10)",
             "train.epochs=!!timestamp nope": "YAML cannot read '!!timestamp nope'",
             "data.columns={user: a, user: b}": "key 'user' appears twice in one mapping"}
    for text, said in cases.items():
        with pytest.raises(ConfigError) as e:
            load_config(None, [text])
        assert said in str(e.value), str(e.value)


def test_a_negative_leading_zero_keeps_its_sign_in_the_hint():
    with pytest.raises(ConfigError, match=r"got '-010' \(a leading zero, which YAML 1.1 reads as octal: write -10\)"):
        load_config(None, ["train.seed=-010"])
    assert load_config(None, ["train.lr=010"]).train.lr == 10.0  # a float key: ten, as written


def test_a_number_too_long_to_read_is_said_so(tmp_path):
    """A red team: 100,000 nines in a config file were 'YAML cannot build a value it tags ...; write the value
    without a !! tag' in a file with no tag."""
    from embedrec.config import load_config
    from embedrec.errors import ConfigError

    f = tmp_path / "big.yaml"
    f.write_text("train:\n  lr: " + "9" * 100_000 + "\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(e.value).startswith(f"config file '{f}': a number too long to read (")
    assert "!! tag" not in str(e.value)


def test_whole_numbers_as_text_are_integers_as_decimals_are_floats():
    """A notebook review: {'train.lr': '0.01'} was taken, {'split.seed': '42'} refused ('expected an integer');
    a whole number's text is an integer now, never one with a leading zero (YAML 1.1's octal)."""
    from embedrec.config import load_config
    from embedrec.errors import ConfigError

    cfg = load_config(None, {"split.seed": "42", "model.dim": " 64 ", "train.lr": "0.01"})
    assert (cfg.split.seed, cfg.model.dim, cfg.train.lr) == (42, 64, 0.01)
    for bad in ("010", "4.5", "42x", ""):
        with pytest.raises(ConfigError, match="split.seed"):
            load_config(None, {"split.seed": bad})


def test_numpy_values_and_tuples_are_taken_as_the_python_values_they_hold():
    """A red team from a notebook: cfg.updated({'model.dim': best['dim']}) with an np.int64 from a DataFrame was
    refused where '8' was taken; an np.array for a list key was a bare ValueError."""
    import numpy as np

    cfg = load_config(None)
    got = cfg.updated({"model.dim": np.int64(8), "train.lr": np.float32(0.01), "split.seed": np.int32(3),
                       "train.als_dims": np.array([8, 16]), "train.eval_k": (5, 10), "model.biases":
                       np.bool_(True)})
    assert (got.model.dim, got.train.lr, got.split.seed, got.train.als_dims, got.train.eval_k,
            got.model.biases) == (8, 0.01, 3, [8, 16], [5, 10], True)
    assert type(got.model.dim) is int and type(got.train.lr) is float
    for key, bad in (("model.dim", np.array([[1, 2]])), ("train.threads", np.float64(2.5))):
        with pytest.raises(ConfigError, match=rf"config key '{key}' \(from updated\(\)\): expected"):
            cfg.updated({key: bad})


def test_foldin_reg_has_a_lower_bound_and_a_singular_fold_in_is_a_usage_error():
    """A red team: recommend.foldin_reg=1e-20 with --rated on an explicit model was an internal error
    (LinAlgError: Singular matrix); at 1e-16 every score was the clipped top of the scale."""
    import numpy as np

    from embedrec.errors import UsageError
    from embedrec.model.factors import Factors
    from embedrec.serve.foldin import fold_in

    for value in ("1e-20", "1e-7", "0"):
        with pytest.raises(ConfigError, match=r"'recommend.foldin_reg'.*is below the minimum 1e-06"):
            load_config(None, [f"recommend.foldin_reg={value}"])
    load_config(None, ["recommend.foldin_reg=1e-6"])
    zero = np.zeros((3, 4), np.float32)  # no movie signal and no L2: a singular solve
    for explicit in (True, False):
        f = Factors(zero, zero, None, None, 3.0, explicit, (1.0, 5.0))
        with pytest.raises(UsageError, match=r"the new user's fold-in solve is singular; .*recommend.foldin_reg"):
            fold_in(f, {0: 5.0}, reg=0.0, alpha=0.0)


def test_train_negatives_has_an_upper_bound():
    """A red team: model.loss=bpr with train.negatives=1000000 tried to allocate 8 GB (an internal RuntimeError,
    or an OOM kill); 1e14 asked for 8.2e17 bytes."""
    with pytest.raises(ConfigError, match=r"'train.negatives'.*1000000 is above the maximum 100000"):
        load_config(None, ["train.negatives=1000000"])
    with pytest.raises(ConfigError) as e:
        load_config(None, ["model.loss=bpr", "train.negatives=5000"])
    assert str(e.value).startswith("config key 'train.negatives' (from an override): 5000 is above the maximum 1000 "
                                   "for model.loss=bpr")
    load_config(None, ["model.loss=bpr", "train.negatives=1000"])
    load_config(None, ["model.loss=softmax", "train.negatives=100000"])


def test_init_std_has_an_upper_bound():
    """A red team: model.init_std=1e30 printed numpy overflow warnings, then blamed train.lr (which ALS ignores)."""
    for value in ("1e30", "1.5"):
        with pytest.raises(ConfigError, match=r"'model.init_std'.*is above the maximum 1.0"):
            load_config(None, [f"model.init_std={value}"])
    load_config(None, ["model.init_std=1.0"])


def test_a_rating_scale_beyond_what_ratings_hold_is_refused():
    """A red team: data.rating_scale=[0,1e308] was taken, and numpy's overflow warning with its source line came
    out on stderr when the ratings (32-bit floats) were checked against it."""
    with pytest.raises(ConfigError, match=r"data.rating_scale' \(from an override\): \[0.0, 1e\+308\] is beyond the ratings"):
        load_config(None, ["data.rating_scale=[0, 1e308]"])
    assert load_config(None, ["data.rating_scale=[-1e9, 1e9]"]).data.rating_scale == [-1e9, 1e9]


def test_a_list_key_given_one_value_or_commas_says_how_a_list_is_written(tmp_path):
    """A first-hour review: `--set train.eval_k=5,10` was refused with 'expected a list of integers' and no word on
    how to write one (tune-dims --dims takes 8,16)."""
    from click.testing import CliRunner

    from embedrec.cli import main

    r = CliRunner().invoke(main, ["config", "--set", "train.eval_k=5,10"])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr == ("error: config key 'train.eval_k' (from --set): expected a list of integers, got '5,10': a "
                        "list goes in brackets, --set 'train.eval_k=[5, 10]'\n")
    assert CliRunner().invoke(main, ["config", "--set", "train.eval_k=[5, 10]"]).exit_code == 0
    with pytest.raises(ConfigError, match=r"got 8: a list goes in brackets, \{'tune.dims': \[8\]\}$"):
        load_config(None, {"tune.dims": 8})
    (tmp_path / "c.yaml").write_text("train:\n  eval_k: 5,10\n")
    with pytest.raises(ConfigError, match=r"got '5,10': a list goes in brackets, eval_k: \[5, 10\]$"):
        load_config(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match=r"got 'a b'$"):  # no list to show
        load_config(None, ["train.eval_k=a b"])
    with pytest.raises(ConfigError, match=r"expected a list of integers or 'auto', got 'big'$"):  # not [big]
        load_config(None, {"train.als_dims": "big"})
    with pytest.raises(ConfigError, match=r"got '64,128': a list goes in brackets, \{'train.als_dims': \[64, 128\]\}$"):
        load_config(None, {"train.als_dims": "64,128"})


def test_yaml_merge_keys_are_read_and_a_key_twice_is_still_refused(tmp_path):
    """A red team: '<<: *defaults' (YAML's merge key) was refused as bad syntax; merged keys are read, a mapping's
    own key overriding a merged one, and one key twice in a mapping is still an error."""
    p = tmp_path / "c.yaml"
    p.write_text("tune:\n  dims: &d [8, 16]\nmodel:\n  <<: {dim: 8, objective: explicit}\n  dim: 16\n"
                 "train:\n  als_dims: *d\n")
    cfg = load_config(p)
    assert (cfg.model.dim, cfg.model.objective, list(cfg.train.als_dims)) == (16, "explicit", [8, 16])
    p.write_text("model:\n  <<: {dim: 8}\n  objective: explicit\n  objective: implicit\n")
    with pytest.raises(ConfigError, match="key 'objective' appears twice in one mapping"):
        load_config(p)
    # an anchor's home: a top-level x-* key, not config (a diff review: 'x-base' was an unknown key)
    p.write_text("x-small: &small\n  dim: 8\n  objective: explicit\nmodel:\n  <<: *small\n  dim: 4\n")
    cfg = load_config(p)
    assert (cfg.model.dim, cfg.model.objective) == (4, "explicit") and "x-small" not in cfg.to_yaml()


def test_the_fold_keys_refuse_every_bad_combination_in_one_line(tmp_path):
    """split.folds and split.fold: each combination they cannot take is one line naming the key and the fix."""
    cases = [
        (["split.folds=5", "split.fold=5"], "config key 'split.fold' (from an override): 5 is no fold of "
         "split.folds=5 (they are numbered 0 to 4); give a fold from 0 to 4"),
        (["split.folds=1"], "config key 'split.folds' (from an override): 1 is below the minimum 2"),
        (["split.folds=101"], "config key 'split.folds' (from an override): 101 is above the maximum 100: a fold's "
         "test split is 1/K of each user's ratings, so above 100 folds most users have fewer ratings than folds "
         "(ML-100K's median user has 65), and each fold of a cross-validation is a whole dataset and run on disk; 5 "
         "or 10 are usual"),
        (["split.fold=2"], "config key 'split.fold' (from an override): 2 picks the test fold of a K-fold split, "
         "and split.folds is not set; set split.folds too (e.g. split.folds=5), or leave split.fold out"),
        (["split.folds=5", "split.method=user_time"], "config key 'split.folds' (from an override): a K-fold split "
         "deals each user's ratings at random into the folds, which split.method=user_time does not (a time split "
         "holds out one window, its latest ratings, so it has no folds); use split.method=random, or leave "
         "split.folds out"),
        (["split.folds=5", "split.test=0.2"], "config keys 'split.test' and 'split.folds' both set the test share: "
         "with split.folds=5 the test split is fold split.fold, 1/5 of each user's ratings; leave split.test out "
         "(or at its default 0.2 in a config file)"),
        (["split.folds=4", "split.cold_movies=0.1"], "config keys 'split.cold_movies' and 'split.folds': the "
         "held-out movies would be test in every fold, so the folds would not partition the ratings; leave "
         "split.cold_movies at 0 with split.folds"),
        (["split.folds=2", "split.valid=0.5"], "config keys 'split.valid' + the test fold (1/split.folds, 1/2) must "
         "leave data for training (they add up to 1); lower split.valid or raise split.folds"),
    ]
    for sets, message in cases:
        with pytest.raises(ConfigError) as e:
            load_config(None, sets)
        assert str(e.value) == message, sets
    with pytest.raises(ConfigError, match="'split.test' and 'split.folds' both"):  # a file's share, not the default
        (tmp_path / "t.yaml").write_text("split:\n  test: 0.3\n  folds: 5\n")
        load_config(tmp_path / "t.yaml")
    with pytest.raises(ConfigError, match="'split.test' and 'split.folds' both"):  # updated() alike
        load_config(None, ["split.test=0.3"]).updated({"split.folds": 3})
    # a whole config file (as `embedrec config` writes one) holds split.test at its default: taken with folds
    (tmp_path / "whole.yaml").write_text(Config().updated({"split.folds": 5, "split.fold": 4}).to_yaml())
    cfg = load_config(tmp_path / "whole.yaml")
    assert (cfg.split.folds, cfg.split.fold, cfg.split.test) == (5, 4, 0.2)
    assert Config().split.folds is None and Config().split.fold == 0  # the default: no folds, today's split
    assert load_config(None, ["split.folds=100", "split.fold=99"]).split.folds == 100  # the maximum itself


def test_load_config_says_which_file_it_found(tmp_path, monkeypatch, caplog):
    """A review: er.load_config() read ./embedrec.yaml (or $EMBEDREC_CONFIG) silently, and the Config did not say
    where it came from."""
    import logging

    import embedrec as er

    caplog.set_level(logging.INFO, "embedrec")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EMBEDREC_CONFIG", raising=False)
    assert er.load_config().source is None and not [r for r in caplog.records if "config: read" in r.getMessage()]
    (tmp_path / "embedrec.yaml").write_text("recommend:\n  k: 3\n")
    cfg = er.load_config()
    assert cfg.recommend.k == 3 and cfg.source == str(tmp_path / "embedrec.yaml")
    assert cfg.updated({"model.dim": 8}).source == cfg.source and "source" not in cfg.to_dict()
    assert [r.getMessage() for r in caplog.records if "config: read" in r.getMessage()] == [
        f"config: read {tmp_path / 'embedrec.yaml'} (found in the current folder)"]
    other = tmp_path / "other.yaml"
    other.write_text("recommend:\n  k: 4\n")
    monkeypatch.setenv("EMBEDREC_CONFIG", str(other))
    caplog.clear()
    assert er.load_config().source == str(other)
    assert [r.getMessage() for r in caplog.records if "config: read" in r.getMessage()] == [
        f"config: read {other} ($EMBEDREC_CONFIG)"]
    caplog.clear()
    assert er.load_config(other).source == str(other) and not caplog.records  # a file named is not said again
