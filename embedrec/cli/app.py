"""The click group, logging to stderr, and the one place where errors become a line on stderr and an exit code.

Commands live one per module in this package (registered in ``embedrec/cli/__init__.py``); the options they
share are in ``options.py``."""

from __future__ import annotations

import codecs
import contextlib
import errno
import functools
import logging
import os
import re
import signal
import sys
import time

import click

from embedrec import __version__
from embedrec.cli.command import (
    Command,
)
from embedrec.cli.logs import (
    STREAMING,
    _Heartbeat,
    _setup_logging,
)
from embedrec.cli.signals import sigterm_as_interrupt
from embedrec.cli.state import _State
from embedrec.errors import (
    EmbedrecError,
    Interrupted,
    OutputRefused,
    UsageError,
    sh_join,
    shorten,
    signal_name,
    stop_signal,
)

log = logging.getLogger("embedrec")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def wrote(*paths) -> None:
    """Say that the command's outputs are published: if stdout then fails, the error says they were written in
    full and need no rerun (a red team: `export ... > /dev/full` published, then said only 'cannot write the
    output', and the rerun was refused as 'already exists')."""
    _State.written += [str(p) for p in paths if p is not None]


def unless_published(run_dir, what: str, call):
    """``call()``, which publishes a new model in ``run_dir`` (update-users, index rebuild); None where Ctrl-C or
    SIGTERM came after its swap of ``current``: the new model is served, so that is said in a warning, as train and
    ingest say it, and the command ends with exit 0 (a red team: 'nothing half-written was left behind', exit 143,
    while the new model was served, and a retry found nothing to update)."""
    from embedrec.run_layout import published_since

    started = time.time()
    try:
        return call()
    except KeyboardInterrupt as e:
        if not published_since(run_dir, started):
            raise
        term = stop_signal(e)
        with contextlib.suppress(OSError):  # (to a terminal that is gone: nothing to say it to)
            log.warning("%s came after %s was published: %s serves it", signal_name(term) if term else "Ctrl-C",
                        what, run_dir)
        wrote(run_dir)
        return None


def _published_note(e: BaseException) -> str:
    """'; written in full before it: out/emb (the others not: rerun for them alone, or with --overwrite)' where
    the library names the outputs an error or a signal came after (export_run's ``published``), else ''."""
    done = getattr(e, "published", None)
    if not done:
        return ""
    return (f"; written in full before it: {', '.join(done)} (the outputs after it were not: rerun for those "
            "alone, or with --overwrite)")


def wrote_nothing(*paths) -> None:
    """Say that the command wrote nothing to its outputs (update-users with nothing to update): if stdout then fails,
    the error says nothing was written (a red team: it said the run 'was written in full')."""
    _State.unwritten += [str(p) for p in paths if p is not None]


def command_line(command: str, extra: list[str], skip: tuple[str, ...] = ()) -> str:
    """``embedrec COMMAND`` with this invocation's -c and --set options, then ``extra``, quoted for a POSIX shell:
    the exact command a hint tells the user to run next (a resume, training on what ingest wrote). ``skip``: keys
    (or 'section.key.' prefixes) the next command does not read, left out of the repeat."""
    args = ["embedrec", command]
    if _State.config_path:
        args += ["-c", str(_State.config_path)]
    given = {e.split("=", 1)[0] for e in extra if "=" in e}  # a key extra sets again is left out of the repeat
    for o in _State.overrides:
        key = o.split("=", 1)[0].strip()
        if key not in given and not any(key == k or k.endswith(".") and key.startswith(k) for k in skip):
            args += ["--set", o]
    return sh_join(args + list(extra))


def reingest_command(prepared, extra: list[str]) -> str:
    """``embedrec ingest SOURCE --set data.prepared=PREPARED --set RECORDED... EXTRA --overwrite`` for the dataset
    at ``prepared``, SOURCE and the settings it was ingested with as its manifest records them (a first-hour pass:
    told to "ingest with --set split.test=0", it ran ingest without its source, which read ML-100K; a review: the
    settings were left to "the other options"); ``extra`` (--set pairs) wins over a recorded key."""
    from embedrec.api import ingested_with
    from embedrec.config_ingest import reingest_args

    _, source, sets = ingested_with(prepared)

    return sh_join(reingest_args(source, prepared, sets, extra))


def progress_enabled() -> bool:
    """Bars on a terminal, unless -q; not on one whose width is unknown (0 columns: `script` without a window,
    some CI consoles), where tqdm draws nothing and each closed bar left a blank line (a first-hour review)."""
    if _State.quiet or not sys.stderr.isatty():
        return False
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except (OSError, ValueError, AttributeError):
        return False


SECONDARY_EXIT_DELAY_S = 1.0  # a refused rank other than 0 waits this long, so that rank 0's line is said first
RANKED = ("train", "export")  # the commands that run on torchrun's ranks; every other one is refused there
RANKED_SAID = ("train", "export --topk-all")


# `embedrec -h`'s one line per command, whole (click cut each docstring's first sentence at the terminal's width,
# mid-phrase: "Manage a run's FAISS index (its options, -c and --set go..."; a first-hour review)
SHORT = {
    "config": "Print the resolved config as YAML.",
    "cross-validate": "K-fold cross-validation: each fold's metrics, mean and SE.",
    "evaluate": "Score a run on its valid or test split beside baselines.",
    "export": "Export the embeddings, the index, all top-K lists, a map.",
    "history": "List what a user rated, with titles, times and splits.",
    "index": "Rebuild a run's FAISS index with other settings.",
    "index rebuild": "Rebuild the run's index with the current index.* settings.",
    "ingest": "Turn MovieLens or a ratings file into a split dataset.",
    "predict": "Score (user, movie) pairs.",
    "recommend": "Top-K movies for users; similar movies, users; audiences.",
    "train": "Train the embeddings and write the run.",
    "tune-dims": "Sweep the embedding dimension on the validation split.",
    "update-users": "Re-solve or add users from new ratings, without retraining.",
    "verify": "Check a run's or a dataset's files against their manifest.",
}


def set_short_help(group: click.Group, prefix: str = "") -> None:
    """Give every command under ``group`` its line of :data:`SHORT` (cli/__init__ calls it once the commands are
    registered)."""
    for name, cmd in group.commands.items():
        cmd.short_help = SHORT.get(prefix + name, cmd.short_help)
        if isinstance(cmd, click.Group):
            set_short_help(cmd, f"{prefix}{name} ")


class Group(click.Group):
    command_class = Command

    def make_context(self, info_name, args, parent=None, **extra):
        try:  # the group's own options (embedrec --bogus)
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:
            _usage_error(e)
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM as the options are parsed: before any work, said as
            from embedrec.errors import how_stopped, stop_signal  # every stop is (a pipeline review: click's

            term = stop_signal(e)  # 'Aborted!', exit 1)
            _error_line(f"{how_stopped(term)}: nothing half-written was left behind", prefix="")
            sys.exit(128 + term if term else 130)
        except BrokenPipeError:  # embedrec -h | head -1
            _quiet_stdout()
            sys.exit(0)
        except OSError as e:  # embedrec -h > /dev/full (a red team: a 38-line traceback; a subcommand's -h said
            known = _known_error(e)  # one line)
            if known is None:
                raise
            _error_line(known)
            sys.exit(1)

    def invoke(self, ctx):
        # the subcommand, if any (click 8.2+ keeps it in _protected_args; invoke empties both lists)
        name = next(iter([*vars(ctx).get("_protected_args", vars(ctx).get("protected_args", ())), *ctx.args]), None)
        if name in self.commands and name not in RANKED and _distributed():
            if not _secondary():  # every rank refuses; rank 0 alone says so (not one line per rank)
                _error_line(f"'embedrec {name}' runs in one process, not under torchrun (there, only "
                            f"{' and '.join(RANKED_SAID)} use the ranks): run 'embedrec {name} ...' alone")
            else:  # a review: 3 of 27 times torchrun stopped rank 0 for this rank's exit before rank 0 said why
                try:
                    time.sleep(SECONDARY_EXIT_DELAY_S)
                except KeyboardInterrupt:  # the launcher stopping it once rank 0 left: quiet (click said 'Aborted!')
                    pass
            sys.exit(2)
        for stream in (sys.stdout, sys.stderr):  # a path or id whose bytes are not UTF-8 (os.fsdecode's
            with contextlib.suppress(AttributeError, ValueError):  # surrogates) is written back as its own bytes,
                if codecs.lookup(stream.encoding or "ascii").name == "utf-8":  # not an internal error (a red team);
                    stream.reconfigure(errors="surrogateescape")  # another encoding keeps its handler (a review:
                    # ascii's stderr then failed on 'é', which backslashreplace wrote as \xe9)
        try:
            # the writers that do not take SIGTERM themselves (train, tune-dims do): taken like Ctrl-C, so their
            # temporary files and locks go and one line says so (a red team: exit 143 in silence, temporaries left);
            # and the streams (recommend, predict), so `timeout` or kill leaves a JSON array closed over its rows;
            # evaluate's --per-user file too (a review: its lock and temporary were left)
            with sigterm_as_interrupt() if name in ("ingest", "export", "index", "evaluate", "update-users", *STREAMING) \
                    else contextlib.nullcontext():
                rv = super().invoke(ctx)
            sys.stdout.flush()  # a full disk behind stdout (> /dev/full) fails here, not at exit
            return rv
        except (EmbedrecError, Interrupted) as e:
            _traceback()
            # Ctrl-C under torchrun, or a usage error (the command line is every rank's): rank 0 alone says it
            # (an output path refused too: the same on every rank; not a config error, which a rank
            # other than 0 may be the one to find, its config differing)
            line = shorten(e.cli_message(), 2000) + _published_note(e) + _found_config_note(e)
            if not (isinstance(e, (Interrupted, UsageError, OutputRefused)) and _secondary()
                    or getattr(e, "every_rank", False) and _local_secondary()):
                _error_line(line)
            if not (isinstance(e, Interrupted) or getattr(e, "from_peer", False) or getattr(e, "all_ranks", False)) \
                    and _distributed():
                # the ranks waiting for this one to join stop too, and one that finds this rank gone names its line
                # (not an error every rank raised together: each says it)
                from embedrec.distributed import post_failure

                post_failure(line)
            sys.exit(e.exit_code)
        except KeyboardInterrupt as e:
            from embedrec.errors import how_stopped, stop_signal

            _traceback()
            term = stop_signal(e)
            done = ("the rows written so far are whole" + (" (each query's list complete)" if name == "recommend"
                                                            else "") if name in STREAMING else
                    "nothing half-written was left behind" + _published_note(e))  # (a first-hour review: recommend --users had written
            # (a review: a 2-rank export whose other rank was killed said 'terminated' alone: torchrun's SIGTERM)
            why = ("; under torchrun a rank that fails has the launcher stop the others with SIGTERM: its report "
                   "names the rank that failed" if term == signal.SIGTERM and _distributed() else "")
            _error_line(f"{how_stopped(term)}: {done}{why}", prefix="")  # 70,000 lines)
            sys.exit(128 + term if term else 130)
        except BrokenPipeError:
            _quiet_stdout()
            sys.exit(0)
        except click.UsageError as e:  # an option click rejects (a subcommand's, or an unknown subcommand)
            _usage_error(e, f"{ctx.command_path} {name}" if name in self.commands else ctx.command_path)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as e:  # a bug: still one line, the traceback on request
            _traceback()
            known = _known_error(e)
            again = "report it with the traceback above" if _State.traceback else "rerun with --traceback and report it"
            line = known if known is not None else f"internal error ({type(e).__name__}: {shorten(e, 300)}); {again}"
            _error_line(line)
            if _distributed() and not _peer_closed(e):
                # a node's own failure (a full disk, memory, an internal error) reaches the ranks on other nodes as
                # an embedrec error's does (a review: only EmbedrecError was posted); a lost peer's echo is not
                from embedrec.distributed import post_failure

                post_failure(line)
            sys.exit(1)


def _found_config_note(e) -> str:
    """For an error under a config file nobody named (./embedrec.yaml, $EMBEDREC_CONFIG): which file was read, so
    a setting from it is not a mystery (a first-hour pass: 'no column score' from a forgotten ./embedrec.yaml; a
    review: 'no trained model in' a run.dir the user never typed). Not for a usage error (the command line's):
    empty then, and when a config was named."""
    if _State.config_path is not None or isinstance(e, UsageError) or not isinstance(e, EmbedrecError):
        return ""
    try:
        from embedrec.config import find_config

        found = find_config(None)
    except Exception:  # the error path: never a second failure
        return ""
    return f" ({_settings_from(found)})" if found is not None else ""


def _settings_from(found) -> str:
    """'settings from FILE, found in the current folder' (or 'from $EMBEDREC_CONFIG'): a config nobody named."""
    from embedrec.config import CONFIG_ENV

    how = f"from ${CONFIG_ENV}" if os.environ.get(CONFIG_ENV, "").strip() else "found in the current folder"
    return f"settings from {found}, {how}"


def _local_secondary() -> bool:
    """A torchrun rank other than its node's first (LOCAL_RANK > 0): an error every rank of a node finds (ranks
    beyond its GPUs) is said once a node."""
    try:
        return int(os.environ.get("LOCAL_RANK", "0").strip() or 0) > 0
    except ValueError:
        return False


def _secondary() -> bool:
    """A torchrun rank other than 0 (False where the environment cannot say: this is the error path). Ranks
    started without torchrun are none: each has its own stderr, no launcher's report beside rank 0's (a review: a
    hand-started rank 1 stopped by SIGTERM exited 143 without its line)."""
    from embedrec.device import secondary

    if not os.environ.get("TORCHELASTIC_RUN_ID"):
        return False
    try:
        return secondary()
    except EmbedrecError:
        return False


def _distributed() -> bool:
    from embedrec.device import active

    try:
        return active()
    except EmbedrecError:
        return False


def _traceback() -> None:
    """With -v/--traceback, the exception's traceback on stderr before its one line: the same line and exit
    code as without it, so a script that adds -v to debug sees the same outcome."""
    if _State.traceback:
        import traceback

        try:
            traceback.print_exc(file=sys.stderr)
        except OSError:
            pass


def _no_such(e: click.UsageError) -> str | None:
    """An unknown option or command in one sentence, as ours: "no such option '--userr'; did you mean one of:
    '--set', '--user', '--users'?" (a first-hour review: click's two sentences, one with a stray period). Built from
    the error's own fields, since click words it differently from one release to the next (8.2.0: "No such
    option: --userr (Possible options: ...)", and no suggestion for a command); None for any other error."""
    kind, name, near = "option", None, getattr(e, "possibilities", None)
    if isinstance(e, click.NoSuchOption):  # not BadOptionUsage, which has an option_name too
        name = e.option_name
    else:
        kind, (name, plain) = "command", _unknown_command(e)
        if plain:  # click 8.2's plain UsageError: the near names as newer clicks find them
            import difflib

            group = e.ctx.command if e.ctx is not None else None
            near = difflib.get_close_matches(name, group.list_commands(e.ctx)) \
                if isinstance(group, click.Group) else None
    if not name:
        return None
    near = sorted(near or [])
    text = f"no such {kind} '{name}'"
    if len(near) == 1:
        return f"{text}; did you mean '{near[0]}'?"
    return f"{text}; did you mean one of: {', '.join(repr(x) for x in near)}?" if near else text


def _unknown_command(e: click.UsageError) -> tuple[str | None, bool]:
    """The command name of an unknown-command error (None for any other error), and whether click said it in a
    plain UsageError (8.2; 8.3 on: NoSuchCommand, its near names with it)."""
    no_command = getattr(click.exceptions, "NoSuchCommand", None)
    if no_command is not None and isinstance(e, no_command):
        return e.command_name, False
    if isinstance(e, click.NoSuchOption):
        return None, False
    m = re.fullmatch(r"No such command '(.+)'\.?", e.format_message().strip(), re.S)
    return (m.group(1), True) if m else (None, False)


# other toolkits' commands, and what embedrec does them with (a review: `embedrec explain` said only that there is no
# such command, where `recommend --explain` is one)
OTHER_COMMANDS = {
    **dict.fromkeys(("explain", "why"), "a list's reasons: 'embedrec recommend --user ID --explain'"),
    **dict.fromkeys(("similar", "similar-movies", "similar-items", "neighbours", "neighbors"),
                    "movies like one: 'embedrec recommend --movie ID'"),
    "similar-users": "users like one: 'embedrec recommend --similar-users ID'",
    **dict.fromkeys(("audience", "target", "users-for", "recommend-users"),
                    "the users most likely to take to a movie: 'embedrec recommend --audience MOVIE'"),
    "fit": "training is 'embedrec train'",
    **dict.fromkeys(("score", "rate"), "scores of (user, movie) pairs: 'embedrec predict --pairs FILE'"),
    **dict.fromkeys(("topk", "top-k", "rank", "rec", "recs", "recommendations"),
                    "top-K lists: 'embedrec recommend --user ID'"),
    **dict.fromkeys(("download", "prepare", "load", "import"), "a dataset from MovieLens or your ratings: 'embedrec "
                    "ingest ml-100k' (or a file)"),
    "test": "a model's figures on its test split: 'embedrec evaluate'",
    "index-rebuild": "'embedrec index rebuild'",
}


def _usage_error(e: click.UsageError, path: str = "embedrec"):
    """click's own usage errors as one line, like ours: what is wrong, then where the options are listed (its
    default is four lines: usage, a hint, a blank line, the error). ``embedrec`` alone still shows the help."""
    if type(e).__name__ == "NoArgsIsHelpError":  # click >= 8.2: no arguments at all means --help
        raise e
    text = _no_such(e) or e.format_message().rstrip(".")
    path = e.ctx.command_path if e.ctx is not None else path  # none for an option given without its value
    hint = _usage_hint(e, path)
    if hint:  # what it probably meant, not the nearest spellings (a first-hour review: predict --user suggested
        text = text.split("; did you mean", 1)[0]  # '--quiet', '--set')
    if not _secondary():  # the command line is every rank's: under torchrun rank 0 alone says what is wrong in it
        _error_line(f"{text[:1].lower()}{text[1:]} (see '{path} -h'){hint}")
    sys.exit(e.exit_code)


# the config sections whose keys a command reads, its own first: an unknown option named as one of their keys
# gets its --set (_usage_hint)
_KEY_SECTIONS = {"train": ("train", "model", "run", "index"), "tune-dims": ("tune", "train", "model"),
                 "ingest": ("data", "split"), "recommend": ("recommend",), "export": ("recommend",),
                 "index": ("index",), "rebuild": ("index",)}


def _usage_hint(e: click.UsageError, path: str) -> str:
    """What the user probably meant (a first-hour pass): an unknown option named as a config key is set with
    --set (`train --epochs 5`); a bare argument to recommend is a user id (`recommend 196`)."""
    command = _unknown_command(e)[0]  # (embedrec's own commands: not a group's, 'index explain', a diff review)
    if command is not None and command.lower() in OTHER_COMMANDS and (e.ctx is None or e.ctx.parent is None):
        return f"; {OTHER_COMMANDS[command.lower()]}"
    if isinstance(e, click.NoSuchOption):
        from embedrec.config import Config, flat_config

        name = e.option_name.lstrip("-").split("=")[0].replace("-", "_")
        sections = _KEY_SECTIONS.get(path.rsplit(" ", 1)[-1], ())
        keys = [k for k in flat_config(Config()) if k.rsplit(".", 1)[-1] == name and k.split(".")[0] in sections]
        if keys:  # the command's own sections only (a review: train --seed is train.seed, not split.seed)
            keys.sort(key=lambda k: sections.index(k.split(".")[0]))
            return f"; {keys[0]} is a config key: --set {keys[0]}=VALUE"
    if path.endswith(" recommend") and isinstance(e, click.NoSuchOption) and \
            e.option_name.lstrip("-").split("=")[0] in ("similar", "similar-movies", "item", "items", "similar-items"):
        return "; movies similar to one: --movie ID (or a title's words)"  # other toolkits' names (a review)
    if path.endswith(" recommend") and isinstance(e, click.NoSuchOption) and \
            e.option_name.lstrip("-").split("=")[0] in ("users-for", "target", "audiences", "recommend-users"):
        return "; the users most likely to take to a movie: --audience MOVIE"
    if path.endswith(" predict") and isinstance(e, click.NoSuchOption) and \
            e.option_name.lstrip("-").split("=")[0] in ("user", "movie", "item", "users", "movies", "items", "pair"):  # a first-hour
        return "; predict scores pairs: --pairs FILE (user,movie lines) or --pairs - (e.g. echo 196,242 |)"  # review
    if path.endswith(" recommend") and "unexpected extra argument" in e.format_message():
        return "; name the user with --user ID (or --movie, --liked ...)"
    return ""


def _error_line(text: str, prefix: str = "error: ") -> None:
    """One line on stderr; if stderr itself cannot be written there is nowhere left to say it."""
    try:
        click.echo(f"{prefix}{text}".replace("\n", " "), err=True)
    except OSError:
        pass


def _quiet_stdout() -> None:
    """After EPIPE (| head): point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


_PATH_ERRNOS = frozenset({errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.ENOENT, errno.ELOOP})


def _peer_closed(e: Exception) -> bool:
    """A collective's error for a rank that went away (gloo's closed or reset connection): this rank's echo of
    another's failure, never posted as its own (distributed.post_failure)."""
    return isinstance(e, RuntimeError) and any(
        w in str(e) for w in ("Connection closed by peer", "Connection reset by peer", "Broken pipe"))


def _cwd_gone() -> bool:
    """Whether the process's current folder was removed (os.getcwd fails)."""
    try:
        os.getcwd()
    except FileNotFoundError:
        return True
    return False


def peer_lost(e: BaseException) -> bool:
    """Whether ``e`` is a torchrun rank's collective failing as a peer went away (its connection closed)."""
    return _distributed() and isinstance(e, Exception) and _peer_closed(e)


AGAIN = "run the same torchrun command again (train: with --resume where it had saved a checkpoint, else as it was)"


def lost_peer_line(again: str | None = None) -> str:
    """The line of a torchrun rank whose peer's connection closed: the line that peer left, on whichever node it
    ran (a review: it sat only in that node's log), or which rank stopped without one (killed outright: a review
    found the others saying only 'another rank'), from distributed.lost_peers. ``again``: what to do after a rank
    killed outright, where the command knows (train: whether its checkpoint is there to resume)."""
    from embedrec.distributed import lost_peers

    said, silent = lost_peers()
    if silent:
        return f"{stopped_without_a_message(silent)}; {again or 'what was saved is kept: ' + AGAIN}"
    return ("another rank of this torchrun job stopped (its connection closed); what was saved is kept: "
            f"{'fix what it says and ' if said else ''}{AGAIN}" + (f"; {said}" if said else ""))


def stopped_without_a_message(ranks: list[int]) -> str:
    """'rank 1 of this torchrun job stopped without a message (killed? ...)': ranks gone without a word."""
    who = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {', '.join(map(str, ranks[:-1]))} and {ranks[-1]}"
    return (f"{who} of this torchrun job stopped without a message (killed? by kill -9 or the out-of-memory killer: "
            "dmesg on its node says)")


def _known_error(e: Exception) -> str | None:
    """Environment failures that are not bugs: a full disk, a read-only file system, undecodable input."""
    from embedrec.cli.options import Report
    from embedrec.fsutil.files import FSIZE_FIX, io_error
    from embedrec.output import whole_rows

    if isinstance(e, FileNotFoundError) and not getattr(e, "filename", None) and _cwd_gone():
        # a relative path (--run ., -o x, a dataset's) read from a folder deleted under the shell: os.getcwd's
        # error has no file name (a red team: an internal error)
        return ("the current folder no longer exists (it was removed after this shell went into it), so no "
                "relative path can be read or written; cd to a folder that exists and run the command again")
    if isinstance(e, PermissionError) and getattr(e, "filename", None) and os.path.exists(e.filename) and \
            not os.access(e.filename, os.R_OK):  # a file it could not read: not "write to another folder"
        from embedrec.fsutil.files import read_denied

        return str(read_denied(e, e.filename))
    if isinstance(e, OSError):
        err = io_error(e, None, "check its permissions, or write to a folder you may write to (run.dir, or -o where "
                                "the command takes one)" if isinstance(e, PermissionError) else
                       "write to another folder (run.dir, -o)")
        if err is not None:
            # stdout itself failed part-way (a full disk, ulimit -f): the file cut back to its whole rows first, a
            # report (one object) to nothing
            whole = not getattr(e, "filename", None) and _State.stdout_start is not None \
                and whole_rows(sys.stdout.fileno(), _State.stdout_start, one_object=Report.started)
            _quiet_stdout()
            if getattr(e, "filename", None):
                return str(err)
            cut = ("; the report, cut short, was removed" if Report.started else
                   "; its last row, cut short, was removed: the rows before it are whole") if whole else ""
            if _State.written:
                done = ", ".join(f"'{p}'" for p in _State.written)
                return (f"{done} {'was' if len(_State.written) == 1 else 'were'} written in full; only the report on "
                        f"standard output failed ({e.strerror}){cut}: no need to run it again")
            if _State.unwritten:
                left = ", ".join(f"'{p}'" for p in _State.unwritten)
                return (f"nothing was written to {left}, which the command left as it was; only the report on "
                        f"standard output failed ({e.strerror}){cut}")
            if e.errno == errno.EFBIG:
                return f"cannot write the output: a file-size limit (ulimit -f){cut}; {FSIZE_FIX}"
            return f"cannot write the output ({e.strerror}){cut}; free space or write it elsewhere"
    if isinstance(e, OSError) and e.errno == errno.ELOOP and getattr(e, "filename", None):
        from embedrec.fsutil.files import loop_error

        loop = loop_error(e.filename, "the path", "run the command again")  # one no reader said as a loop itself
        if loop is not None:
            return str(loop)
    if isinstance(e, OSError) and e.errno in _PATH_ERRNOS and getattr(e, "filename", None):
        return (f"cannot use '{e.filename}': {e.strerror}; check that path (a file where a folder is needed, or "
                "the other way round, a name too long, a missing parent)")
    text = str(e)
    if _distributed() and _peer_closed(e):
        return lost_peer_line()
    if (isinstance(e, OSError) and " requested and " in text and " written" in text) or \
            "No space left on device" in text:  # numpy's short write; FAISS's write_index
        _quiet_stdout()
        return "cannot write the output: the disk is full or the file was cut short; free space or write it elsewhere"
    if isinstance(e, EOFError):
        return f"the input ended early ({shorten(e, 120)}): a truncated compressed file? download or copy it again"
    if isinstance(e, UnicodeEncodeError) and e.encoding == codecs.lookup(getattr(sys.stdout, "encoding", None)
                                                                        or "utf-8").name:
        _quiet_stdout()  # an id or title the output's encoding has no byte for (PYTHONIOENCODING=ascii, a C locale)
        return (f"the output's encoding ({e.encoding}) cannot write {ascii(e.object[e.start:e.end])}; use a UTF-8 "
                "locale (e.g. LC_ALL=C.UTF-8) or PYTHONIOENCODING=utf-8")
    if isinstance(e, UnicodeDecodeError):
        return (f"cannot decode byte 0x{e.object[e.start]:02x} at offset {e.start} of the input as {e.encoding}; "
                "save it as UTF-8 text")
    if isinstance(e, MemoryError):
        return f"out of memory ({shorten(e, 120) or 'MemoryError'}); use a smaller input or setting"
    return None


def common(fn=None, *, config=None):
    """-c/--config, --set, -q/--quiet, -v/--verbose, --traceback for every subcommand. ``@common(config=f)``: the
    command's config is ``f(path, overrides, options)`` (the command's own options as keywords) in place of
    ``load_config(path, overrides)``: a command whose options shape the config's checks (cross-validate's --folds)."""
    if fn is None:
        return functools.partial(common, config=config)
    from embedrec.cli.options import PathParam, Report

    @click.option("-c", "--config", "config_path", type=PathParam(dir_okay=False), default=None,
                  help="YAML config (default: $EMBEDREC_CONFIG, else ./embedrec.yaml, else the built-in "
                       "defaults of configs/default.yaml). In the file, paths starting with ./ or ../ are "
                       "relative to the file.")
    @click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
                  help="Override one config value; repeatable. Example: --set train.lr=0.01")
    @click.option("-q", "--quiet", is_flag=True, help="No progress bars or info messages on stderr.")
    @click.option("-v", "--verbose", is_flag=True, help="More detail on stderr; tracebacks on errors.")
    @click.option("--traceback", is_flag=True, help="Show the Python traceback on errors.")
    @functools.wraps(fn)
    def wrapper(config_path, overrides, quiet, verbose, traceback, **kw):
        _State.written, _State.unwritten, Report.started = [], [], False
        quiet, verbose = quiet or _State.g_quiet, verbose or _State.g_verbose  # also accepted before the subcommand
        _State.traceback = traceback or verbose or _State.g_traceback
        _State.quiet = quiet
        _State.config_path, _State.overrides = config_path, tuple(overrides)
        _setup_logging(quiet, verbose)
        from embedrec.config import find_config, load_config

        try:
            path = find_config(config_path)
            cfg = load_config(path, overrides) if config is None else config(path, overrides, kw)
            _warn_unread_sets(cfg)
            out = fn(cfg, **kw)
        finally:
            if _Heartbeat._current is not None:  # (the command's own: no line after its last, an error's too)
                _Heartbeat._current.stop()
        if path is not None and config_path is None:  # a file nobody named: said once the command has done its
            log.info("%s (-c names another)", _settings_from(path))  # work (an error says it in its one line)
        return out

    return wrapper


_RUN_READERS = {"recommend", "predict", "evaluate", "export", "rebuild", "update-users", "history"}  # the commands that read a run


def _warn_unread_sets(cfg) -> None:
    """One warning for --set values of a trained run's model (run_inputs.sets_not_applied) that a command reading the
    run cannot apply (a first-hour pass: `predict --set model.objective=explicit` answered from a ranking run,
    then advised that very --set). A config file's keys are not said: one file serves every command."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.command.name not in _RUN_READERS:
        return
    from embedrec.run_inputs import sets_not_applied

    differ = sets_not_applied(ctx.params.get("run_dir") or cfg.run.dir, cfg)
    if differ:
        them = "it" if len(differ) == 1 else "them"
        log.warning("--set %s: no effect on 'embedrec %s', which reads the run as it was trained; leave %s out, "
                    "or train again with %s%s", ", --set ".join(f"{k}={now} (trained: {was})" for k, now, was in differ),
                    ctx.command_path.split(" ", 1)[-1], them, them,
                    " (a new user's popularity prior: recommend --prior off|W sets it per request)"
                    if any(k == "train.als_newuser_prior" for k, _, _ in differ) else "")


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="embedrec")
@click.option("-q", "--quiet", "g_quiet", is_flag=True, help="As the subcommand's -q (given before it).")
@click.option("-v", "--verbose", "g_verbose", is_flag=True, help="As the subcommand's -v.")
@click.option("--traceback", "g_traceback", is_flag=True, help="As the subcommand's --traceback.")
def main(g_quiet, g_verbose, g_traceback):
    """Embedding-based movie recommendation: ingest MovieLens (or your own ratings), train a
    matrix-factorization model (implicit ALS by default; rating prediction and the other losses in PyTorch), pick
    the embedding size, and serve top-K movies from a FAISS index.

    \b
    Quick start:
      embedrec ingest ml-100k
      embedrec train
      embedrec recommend --user 196
    """
    _State.g_quiet, _State.g_verbose, _State.g_traceback = g_quiet, g_verbose, g_traceback
    _State.traceback = g_traceback or g_verbose
