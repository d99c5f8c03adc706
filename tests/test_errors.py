"""Error messages speak library terms to Python and CLI terms to a shell (errors.py's «CLI|LIBRARY» marks)."""

import logging

import pytest

from embedrec.errors import ArtifactError, ConfigError, TermsFilter, cli_terms, library_terms


@pytest.mark.parametrize("marked, cli, lib", [
    ("pass «--overwrite|overwrite=True» to replace it", "pass --overwrite to replace it",
     "pass overwrite=True to replace it"),
    ("try «--set train.lr=0.01»", "try --set train.lr=0.01", "try train.lr=0.01"),
    ("«--rated» '50=9': bad", "--rated '50=9': bad", "rated '50=9': bad"),
    ("evaluate «--split valid»", "evaluate --split valid", "evaluate split=valid"),
    ("use «--user-features»", "use --user-features", "use user_features"),
    ("no marks here", "no marks here", "no marks here"),
])
def test_marks_render_in_both_terms(marked, cli, lib):
    assert cli_terms(marked) == cli
    assert library_terms(marked) == lib


def test_errors_carry_both_forms():
    e = ArtifactError("'out' exists; pass «--overwrite|overwrite=True»")
    assert str(e) == "'out' exists; pass overwrite=True"
    assert e.cli_message() == "'out' exists; pass --overwrite"
    assert ConfigError("plain").cli_message() == "plain"


def test_library_errors_name_no_cli_flag(tmp_path):
    """A notebook user is told a key, not a flag (the CLI shows the same error with --set)."""
    from embedrec.config import load_config

    with pytest.raises(ConfigError) as e:
        load_config(None, ["train.lr"])
    assert "--set" not in str(e.value) and "train.lr=0.01" in str(e.value)
    assert "--set train.lr=0.01" in e.value.cli_message()


def test_log_records_rendered_by_filter():
    rec = logging.LogRecord("embedrec", logging.INFO, __file__, 1, "kept (use «--fresh|fresh=True») %d", (3,), None)
    TermsFilter(cli=False).filter(rec)
    assert rec.getMessage() == "kept (use fresh=True) 3"
    rec = logging.LogRecord("embedrec", logging.INFO, __file__, 1, "kept (use «--fresh|fresh=True») %d", (3,), None)
    TermsFilter(cli=True).filter(rec)
    assert rec.getMessage() == "kept (use --fresh) 3"


def test_shorten_never_emits_control_characters():
    from embedrec.errors import shorten

    assert shorten("5\x00x\x1b[31m") == "5\\x00x\\x1b[31m"  # a NUL or an escape from a file is shown, not sent
    assert shorten("é plain") == "é plain"


def test_paths_and_commands_as_a_message_names_them(tmp_path, monkeypatch):
    """errors.from_here / command: one way for run_fix, dataset_fix, verify and the resume hint to show a path
    and a command to paste."""
    from pathlib import Path

    from embedrec.errors import command, from_here

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "a" / "m").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "current").symlink_to("m")
    assert from_here(tmp_path / "runs" / "a") == Path("runs/a")
    assert from_here("runs/a/current") == Path("runs/a/m")
    assert from_here("runs/a/current", resolve=False) == Path("runs/a/current")
    assert from_here("/elsewhere/x") == Path("/elsewhere/x")
    assert command("embedrec train --run runs/a") == "'embedrec train --run runs/a'"
    assert command("embedrec train --run 'my runs'") == "embedrec train --run 'my runs'"


# options another program takes, or a CLI command named as the CLI's: not embedrec options a library caller passes
CLI_WORDS_ALLOWED = {
    ("distributed.py", "torchrun --nproc-per-node"): "the launcher's own option: torchrun starts the ranks",
    ("device.py", "torchrun --nproc-per-node"): "the launcher's own option: a rank per GPU",
    ("export_topk.py", "'embedrec recommend --users -'"): "a command to paste, named as the CLI's",
    ("models_scores.py", "the CLI's --pairs"): "says the option is the CLI's",
    ("training/kernel.py", "xcode-select --install"): "a shell command that installs a C compiler",
}


def _raise_text(node) -> str:
    """The text a raise statement's expression spells: its string literals joined (f-string values as {}), a
    ``marked(...)`` call as a mark (both vocabularies given)."""
    import ast

    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else ""
    if isinstance(node, ast.JoinedStr):
        return "".join(_raise_text(v) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        return "{}"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _raise_text(node.left) + _raise_text(node.right)
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "marked":
        return "«marked|marked»"
    return " ".join(t for t in map(_raise_text, ast.iter_child_nodes(node)) if t)


def test_library_error_texts_name_options_only_in_both_vocabularies():
    """An architecture review: library errors said `add --set split.method=user_time` and `train without
    --resume` to a notebook. Every raise outside embedrec/cli/ that names an option (--x) does so inside a
    «CLI|LIBRARY» mark (or marked()), so str(error) speaks library terms; CLI_WORDS_ALLOWED lists the exceptions."""
    import ast
    import re
    from pathlib import Path

    from embedrec.errors import _MARK

    pkg = Path(__file__).resolve().parents[1] / "embedrec"
    found, used = [], set()
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg).as_posix()
        if rel.startswith("cli/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Raise) and node.exc is not None):
                continue
            text = _raise_text(node.exc)
            for (where, words) in CLI_WORDS_ALLOWED:
                if rel == where and words in text:
                    text, _ = text.replace(words, ""), used.add((where, words))
            bare = re.search(r"(?<![\w-])--[a-z][\w-]*", _MARK.sub("", text))
            if bare:
                found.append(f"embedrec/{rel}:{node.lineno}: {bare.group(0)} in {text[:100]!r}")
    assert not found, "\n".join(found)
    assert used == set(CLI_WORDS_ALLOWED)  # none of them gone stale


def test_library_terms_of_several_sets_and_of_null():
    """A notebook review: 'name them with data.columns.user=NAME --set data.columns.movie=NAME' (only the first
    --set removed), and 'data.columns.rating=null', which as {'data.columns.rating': 'null'} names a column
    'null' in Python."""
    from embedrec.errors import cli_terms, library_terms

    text = "«--set data.columns.user=uid --set data.columns.movie=mid»"
    assert library_terms(text) == "data.columns.user=uid, data.columns.movie=mid"
    assert cli_terms(text) == "--set data.columns.user=uid --set data.columns.movie=mid"


def test_busy_is_its_own_exit_code_and_an_artifact_error():
    # a writer refused by another's lock: exit 75 (EX_TEMPFAIL, "try again later"), told apart from bad data's 1
    import embedrec as er
    from embedrec.errors import ArtifactError, Busy, DataError

    assert er.Busy is Busy and "Busy" in er.__all__
    assert issubclass(Busy, ArtifactError) and Busy("x").exit_code == 75
    assert {ArtifactError("x").exit_code, DataError("x").exit_code} == {1}


def test_a_stop_is_said_by_its_signal_and_exits_128_plus_it():
    from embedrec.errors import Interrupted, Terminated, how_stopped, signal_name, stop_signal

    assert [how_stopped(s) for s in (0, 15, 1)] == ["interrupted", "terminated (SIGTERM)", "hung up (SIGHUP)"]
    assert [stop_signal(e) for e in (KeyboardInterrupt(), Terminated(), Terminated(1))] == [0, 15, 1]
    assert [Interrupted("x", terminated=t).exit_code for t in (False, True, 15, 1)] == [130, 143, 143, 129]
    assert Interrupted("x", terminated=1).terminated is True and Interrupted("x").signum == 0
    assert stop_signal(Interrupted("x", terminated=True)) == 15 and signal_name(1) == "SIGHUP"


def test_errors_are_also_the_standard_librarys_kinds():
    """An API review: a generic `except ValueError` did not catch a UsageError, nor `except LookupError` an unknown
    id's NotFoundError."""
    import embedrec as er

    for cls in (er.ConfigError, er.DataError, er.UsageError, er.OutputExists):
        assert issubclass(cls, ValueError) and issubclass(cls, er.EmbedrecError), cls
    assert issubclass(er.NotFoundError, LookupError) and not issubclass(er.NotFoundError, KeyError)
    assert not issubclass(er.ArtifactError, ValueError) and not issubclass(er.Busy, ValueError)
    assert str(er.UsageError("«--overwrite|overwrite=True»")) == "overwrite=True"


def test_error_fields_a_program_reads_instead_of_the_text(tmp_path, trained_run):
    """A review: NotFoundError named one unknown id of several, find_movie's carried no kind, ConfigError no key and
    DataError no file or line, so a program had to parse the text."""
    import embedrec as er
    from embedrec.errors import DataError, NotFoundError

    m = trained_run.opened
    known = int(m.user_ids[0])
    with pytest.raises(NotFoundError) as e:
        m.recommend([known, 999999, 888888, 999999], k=2)
    assert (e.value.kind, e.value.id, e.value.ids) == ("user", 999999, [999999, 888888])
    with pytest.raises(NotFoundError) as e:
        m.recommend_new(liked=[999999, 888888])
    assert (e.value.kind, e.value.id, e.value.ids) == ("movie", 999999, [999999, 888888])
    with pytest.raises(NotFoundError) as e:
        m.find_movie("zzzqqq")
    assert (e.value.kind, e.value.id, e.value.ids) == ("title", "zzzqqq", ["zzzqqq"])
    assert NotFoundError("x", kind="user", id=5).ids == [5] and NotFoundError("x").ids == []

    with pytest.raises(ConfigError) as c:
        er.load_config(overrides={"model.dimm": 64})
    assert c.value.key == "model.dimm"
    with pytest.raises(ConfigError) as c:
        er.load_config(overrides={"model.dim": -3})
    assert c.value.key == "model.dim"
    (tmp_path / "bad.yaml").write_text("model:\n  dim: [\n")
    with pytest.raises(ConfigError) as c:
        er.load_config(tmp_path / "bad.yaml")
    assert c.value.key is None
    assert ConfigError("no key here", key="train.lr").key == "train.lr"

    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,movie_id,rating\n1,2,4\n1,3,x\n2,2,5\n")
    with pytest.raises(DataError) as d:
        er.ingest(str(bad), er.load_config(), output=tmp_path / "ds")
    assert (d.value.path, d.value.line) == (str(bad), 3), str(d.value)
    assert (DataError("r.parquet: row 7: rating x").path, DataError("r.parquet: row 7: rating x").line) == \
        ("r.parquet", 7)
    assert (DataError("the file is empty").path, DataError("the file is empty").line) == (None, None)


def test_a_command_with_control_characters_pastes_back_as_the_path_it_names():
    """A red team: a run folder named with a line break and an escape was offered as 'runs/nl\\nx\\x1b[31mRED' in
    single quotes, which names another path; sh_join writes such an argument in ANSI-C quotes, which bash reads
    back as given, and the others as shlex does."""
    import shlex
    import shutil
    import subprocess

    from embedrec.errors import UNSAFE_CHARS, sh_join

    args = ["embedrec", "train", "--run", "runs/nl\nx\x1b[31mRED", "a b", "it's", "back\\slash\t'q'", "a\x85b\u202ec"]
    line = sh_join(args)
    assert not UNSAFE_CHARS.search(line) and sh_join(args[:2] + args[4:6]) == shlex.join(args[:2] + args[4:6])
    if shutil.which("bash"):
        got = subprocess.run(["bash", "-c", f"printf '%s\\0' {line}"], capture_output=True, check=True).stdout
        assert got.split(b"\0")[:-1] == [a.encode() for a in args]
