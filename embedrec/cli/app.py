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
from embedrec.errors import (
    EmbedrecError,
    Interrupted,
    OutputRefused,
    Terminated,
    TermsFilter,
    UsageError,
    sh_join,
    shorten,
    signal_name,
    stop_signal,
)

log = logging.getLogger("embedrec")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _State:
    traceback = False
    quiet = False
    g_quiet = g_verbose = g_traceback = False  # -q/-v/--traceback given before the subcommand
    config_path = None  # -c and --set as given, to repeat them in hints (e.g. the exact resume command)
    overrides: tuple = ()
    process = False  # run() as the process's own command (not CliRunner, not a notebook): it leaves after it
    written: list = []  # what the command has published before it reports on stdout (wrote())
    unwritten: list = []  # what the command left as it was, with nothing to write (wrote_nothing())
    stdout_start: int | None = None  # where the rows begin in stdout, a regular file (run(): output.stdout_offset)


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


class _BarAwareHandler(logging.StreamHandler):
    """Log lines go above a live tqdm bar (tqdm.write) instead of into it; tqdm is never imported for this. A bar
    still in its delay (bars.counted's ``delay``: nothing drawn yet) is left undrawn: tqdm.write draws every bar
    again after the line, and a bar so drawn was never cleared (tqdm clears only a bar it drew itself; a review:
    ingest's 'preparing' bar, drawn by a note said 0.3 s into its 2 s delay, stayed in front of the summary)."""

    last = 0.0  # time.monotonic() of the last line written (_Heartbeat's)

    def emit(self, record):
        self.last = time.monotonic()
        tq = getattr(sys.modules.get("tqdm"), "tqdm", None)  # (None while another thread imports it: a review
        # saw the heartbeat's line fail on the half-made module)
        if tq is not None and getattr(tq, "_instances", None):
            waiting = [b for b in list(tq._instances) if not b.disable and b.delay and  # noqa: SLF001
                       b.last_print_t < b.start_t + b.delay]
            for b in waiting:  # (a disabled bar is neither cleared nor drawn by tqdm.write)
                b.disable = True
            try:
                tq.write(self.format(record), file=self.stream)
            except Exception:
                self.handleError(record)
            finally:
                for b in waiting:
                    b.disable = False
            return
        super().emit(record)


# where stderr is no terminal (a log file, CI, nohup), so no bar is drawn: a line after this long without one, that
# the command is still working and how long it has (a first-hour review: train was silent for 69 s, then 100 s,
# in a log); EMBEDREC_HEARTBEAT_S sets the seconds (0: none). Not for recommend and predict, whose silence is an
# input that has not come yet
HEARTBEAT_S = 60.0
HEARTBEAT_ENV = "EMBEDREC_HEARTBEAT_S"


class _Heartbeat:
    """A daemon thread that says, through ``handler``'s logger, that the command is still working once no line
    has been written for ``every`` seconds (then again each ``every`` seconds of silence), until :meth:`stop`."""

    _current: _Heartbeat | None = None

    def __init__(self, handler: _BarAwareHandler, every: float):
        import threading

        self.handler, self.every, self.started = handler, every, time.monotonic()
        handler.last = self.started
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="embedrec-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(min(self.every, 1.0)):
            now = time.monotonic()
            if now - self.handler.last >= self.every and not self._stop.is_set():
                log.info("... still working (%s since the line above, %s since the command began)",
                         _duration(now - self.handler.last), _duration(now - self.started))

    def stop(self) -> None:
        self._stop.set()

    @classmethod
    def start(cls, handler: _BarAwareHandler, quiet: bool) -> None:
        """Stop the one running (a command before this one in the process), and start one where it applies."""
        if cls._current is not None:
            cls._current.stop()
            cls._current = None
        try:
            every = float(os.environ.get(HEARTBEAT_ENV, HEARTBEAT_S))
        except ValueError:
            every = HEARTBEAT_S
        ctx = click.get_current_context(silent=True)
        name = ctx.command.name if ctx is not None else None
        if quiet or not every > 0 or name in STREAMING or sys.stderr is None or sys.stderr.isatty():  # (nan: none)
            return
        cls._current = cls(handler, every)


def _duration(seconds: float) -> str:
    """'45 s', '2 min 5 s', '1 h 3 min'."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _setup_logging(quiet: bool, verbose: bool) -> None:
    log.handlers.clear()
    for f in list(log.filters):
        log.removeFilter(f)
    log.addFilter(TermsFilter(cli=True))  # log lines name options as flags (--set train.lr=0.01, --overwrite)
    handler = _BarAwareHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    _Heartbeat.start(handler, quiet)


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
STREAMING = ("recommend", "predict")  # answer as their input comes: stdout holds the rows answered before a Ctrl-C


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


_NUMBER_BELOW_ZERO = re.compile(r"-\d+(\.\d*)?")  # '-1', '-0', '-2.5': an option's value, not an option


def value_optional(p: click.Parameter) -> bool:
    """Whether ``p`` is an option whose value may be left out (``--explain`` alone, ``--explain 5``): one of type
    ``options.OptionalCount``, the type every such option here is declared with (``is_flag=False`` and its
    ``flag_value``). Told by our own type, not by click's private ``Option._flag_needs_value``, whose meaning has
    moved between click releases; tests/test_cli.py checks the two agree with what click's parser does."""
    from embedrec.cli.options import OptionalCount

    return isinstance(p, click.Option) and isinstance(p.type, OptionalCount)


class Command(click.Command):
    """A subcommand (every one of ``main``'s, through ``Group.command_class``) that reads a number below zero after
    an option whose value may be left out (``--explain -1``, :func:`value_optional`; click takes '-1' for an
    option, then says 'no such option') as that option's value: its type's own refusal, naming the option and what
    it takes; and refuses an option of one value given twice with two values (:func:`_refuse_repeated`)."""

    def parse_args(self, ctx, args):
        optional = {name: p for p in self.params if value_optional(p) for name in p.opts}
        if optional:
            for i, arg in enumerate(args):
                if arg == "--":
                    break
                name, eq, value = arg.partition("=")
                value = value if eq else args[i + 1] if i + 1 < len(args) else ""
                if name in optional and _NUMBER_BELOW_ZERO.fullmatch(value):
                    optional[name].type.convert(value, optional[name], ctx)  # raises its BadParameter
        _refuse_repeated(self, ctx, args)
        return super().parse_args(ctx, args)


def _refuse_repeated(command: click.Command, ctx, args) -> None:
    """A usage error for an option that takes one value given more than once with different values (a first-hour
    review: click keeps the last without a word, so `recommend --user 196 --user 186` answered 186 alone, and
    `--movie 'star wars' --movie 181` 181 alone). The options meant to repeat (``multiple``: --set, --genre,
    evaluate's -k) and flags are not counted; the same value twice is no choice to make (`-k5 -k 5`). Which options
    were given twice is click's own parse (its order lists an option each time it is given); the values said are
    read from the arguments as click's parser reads them (:func:`_typed_values`: clusters such as `-qk5` too)."""
    single = [p for p in command.get_params(ctx) if isinstance(p, click.Option) and not p.multiple and not p.count
              and not p.is_flag]
    if not single or len(args) < 2:  # (an option twice at least)
        return
    try:
        _, _, order = command.make_parser(ctx).parse_args(list(args))
    except click.UsageError:  # said by the parse that follows, in its words
        return
    typed = None
    for p in single:
        if sum(o is p for o in order) < 2:
            continue
        typed = _typed_values(command, ctx, args) if typed is None else typed
        values = typed.get(p, [])
        if len(values) >= 2 and len(set(values)) == 1:
            continue
        name = next((o for o in p.opts if o.startswith("--")), p.opts[0])
        times = "twice" if len(values) == 2 else f"{max(len(values), 2)} times"
        said = f" ({' and '.join('without a value' if v is None else repr(v) for v in values)})" if values else ""
        raise click.UsageError(f"{name} given {times}{said}; it takes one value: give it once", ctx)


def _typed_values(command: click.Command, ctx, args) -> dict[click.Option, list]:
    """{option: the values it was given, in order} over ``args`` as click's parser reads them (click/parser.py's
    _process_args_for_options, _match_long_opt, _match_short_opt, _get_value_from_state), for arguments it parsed
    without an error: ``--`` ends the options; an argument of '-' and more is an option, else a positional
    (the options end at the first one where the command takes no interspersed arguments); ``--name=value`` or
    ``--name value``; a cluster of short options (``-qk5``, ``-qk 5``) is read a letter at a time, and the first
    that takes a value takes the rest of the cluster, else the next argument, whatever it starts with. A value that
    may be left out (:func:`value_optional`) is None where it is: no argument follows, or the next starts an
    option. A flag's or a count's letters take no value (not recorded)."""
    long, short = {}, {}
    for p in command.get_params(ctx):
        if isinstance(p, click.Option):
            for name in (*p.opts, *p.secondary_opts):
                prefix = name[:2] if name[1:2] == name[:1] else name[:1]  # click's split_opt
                (short if len(prefix) == 1 and len(name) == 2 else long)[name] = p
    out: dict[click.Option, list] = {}
    rest = list(args)

    def take(p: click.Option) -> None:
        if p.is_flag or p.count:
            return
        if len(rest) < p.nargs:
            value = None  # (a value-optional option at the end; any other was a usage error)
        elif p.nargs == 1:
            optional = value_optional(p) and rest[0][:1] == "-" and len(rest[0]) > 1
            value = None if optional else rest.pop(0)
        else:
            value, rest[:p.nargs] = tuple(rest[:p.nargs]), []
        out.setdefault(p, []).append(value)

    while rest:
        arg = rest.pop(0)
        if arg == "--":
            break
        if arg[:1] != "-" or len(arg) == 1:
            if not command.allow_interspersed_args:
                break
            continue
        name, eq, value = arg.partition("=")
        if name in long:
            if eq:
                rest.insert(0, value)
            take(long[name])
            continue
        if arg[:2] == "--":
            continue  # (no such option: click refused it already)
        for i, ch in enumerate(arg[1:], 2):
            p = short.get(f"-{ch}")
            if p is None:
                break
            if not (p.is_flag or p.count):
                if i < len(arg):
                    rest.insert(0, arg[i:])
                take(p)
                break
    return out


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


def _signal_again(hook, pending: list, unraisable) -> None:
    """sys.unraisablehook while sigterm_as_interrupt's block runs: a stop (SIGTERM's Terminated, Ctrl-C's
    KeyboardInterrupt) raised where Python cannot raise it (a finalizer, matplotlib's weakref callbacks) is sent
    again to this process, so it stops the work at its next step (a red team: 'Exception ignored ... Terminated',
    a traceback, then the export went on to exit 0); anything else goes to ``hook``, Python's."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):  # (from a thread a moment later: sent from here, its
        import threading  # handler would run in this hook, which Python ignores too)

        again = threading.Timer(0.01, os.kill, (os.getpid(), stop_signal(unraisable.exc_value) or signal.SIGINT))
        again.daemon = True
        pending.append(again)
        again.start()
        return
    hook(unraisable)


class _SigtermState:
    """What sigterm_as_interrupt's handler does: raise Terminated, or after ``defer()`` (the work is published;
    only its report is left) note the signal, SIGINT's too, which ``came`` then says."""

    def __init__(self, handler=None) -> None:
        self.deferred = False
        self.came: str | bool = False  # after defer(): the signal's name
        self._handler = handler

    def defer(self) -> None:
        self.deferred = True
        if self._handler is not None:
            signal.signal(signal.SIGINT, self._handler)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While the block runs, SIGTERM (and SIGHUP) raises ``errors.Terminated`` (a KeyboardInterrupt) in the main
    thread, so it
    takes Ctrl-C's way out (``train``, ``tune-dims``); once the block calls ``defer()`` on what it yields (the
    run is published), a SIGTERM or SIGINT waits for the block's end instead (``came``), so a finished run is not
    reported as killed. The previous handlers come back afterwards, except SIGTERM's in the process's own command
    (``cli.run``), which leaves next: a SIGTERM in that second is ignored, not a silent exit 143. Elsewhere than
    the main thread (where Python cannot install a handler) it does nothing."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield _SigtermState()
        return

    def handler(signum, frame):
        if state.deferred:
            state.came = signal_name(signum)
            return
        raise Terminated(signum)

    state = _SigtermState(handler)
    # SIGHUP (a terminal or SSH session that hangs up) as SIGTERM: temporaries and locks go, the checkpoint stays,
    # one line (to a log file, where stderr was one), exit 129 (a review: the default action left no word)
    # (not where SIGHUP is ignored: nohup's promise, which a review found overridden; nor SIGTERM where the process
    # was started with it ignored, `trap '' TERM`: a review found it honoured after the first second)
    previous = tuple(signal.getsignal(sig) if signal.getsignal(sig) is signal.SIG_IGN else signal.signal(sig, handler)
                     if sig != signal.SIGINT else signal.getsignal(sig)
                     for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
    hook, pending = sys.unraisablehook, []
    sys.unraisablehook = functools.partial(_signal_again, hook, pending)
    try:
        yield state
    finally:
        sys.unraisablehook = hook
        for again in pending:  # a stop sent again that the block outran: the work is done, not killed at exit
            again.cancel()
        # the process's own command leaves next: a SIGTERM in that second stays noted, not a kill (exit 0 for a
        # published run); Ctrl-C gets its handler back, so it can still cut a torchrun rank's wait at exit short
        keep = (signal.SIGTERM, signal.SIGHUP) if state.deferred and _State.process else ()
        for sig, was in zip((signal.SIGTERM, signal.SIGINT, signal.SIGHUP), previous):
            if sig not in keep:
                signal.signal(sig, signal.SIG_DFL if was is None else was)


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
