"""Bad input to `embedrec ingest` found by a red-team pass: each is one line on stderr saying what is wrong, where
and how to fix it, a non-zero exit, nothing on stdout and no output folder; valid-but-unusual input is read."""

from click.testing import CliRunner

from embedrec.cli import main

HEAD = "user_id,movie_id,rating,timestamp\n"
ROWS = "".join(f"{u},{m},{(u * m) % 5 + 1},{1000 + u * 10 + m}\n" for u in range(1, 7) for m in range(1, 6))


def ingest(tmp_path, source, *args, input=None, quiet=False):
    out = tmp_path / "ds"
    r = CliRunner().invoke(main, ["ingest", *(["-q"] if quiet else []), str(source), "-o", str(out), *args],
                           input=input)
    return r, out


def refused(r, out, phrase: str, code: int = 1) -> str:
    """One error line holding ``phrase``, exit ``code``, no traceback, nothing on stdout, no output folder."""
    lines = r.stderr.splitlines()
    assert r.exit_code == code and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("error: ") and phrase in lines[0], lines[0]
    assert r.stdout == "" and not out.exists()
    return lines[0]


def test_two_roles_naming_one_column_is_a_config_error(tmp_path):
    """data.columns.movie=user_id was an internal error (KeyError: 'user_id')."""
    p = tmp_path / "r.csv"
    p.write_text(HEAD + ROWS)
    r, out = ingest(tmp_path, p, "--set", "data.columns.movie=user_id")
    refused(r, out, "config keys 'data.columns.user' and 'data.columns.movie' both name the column 'user_id'", 2)


def test_a_tab_separator_as_typed_is_a_tab_and_longer_separators_are_refused(tmp_path):
    """--set 'data.separator=\\t' (a backslash and a t) printed pandas' ParserWarning and its source line, then
    'cannot parse (the 'c' engine does not support separators > 1 char)'."""
    p = tmp_path / "r.csv"
    p.write_text((HEAD + ROWS).replace(",", "\t"))
    r, out = ingest(tmp_path, p, "--set", "data.separator=\\t", quiet=True)
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    r, out = ingest(tmp_path, p, "--set", "data.separator=;;", "--overwrite")
    line = refused(r, out.with_name("none"), "config key 'data.separator': ';;' is 2 characters", 2)
    assert "'\\t' for a tab" in line
