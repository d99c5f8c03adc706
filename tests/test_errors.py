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
