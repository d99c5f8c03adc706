"""Options and input types shared by several commands, and the metrics writer (with -k and --metrics, as the\ncommands that score read them)."""

from __future__ import annotations

import json
import os
import re
import sys
import zlib

import click

from embedrec.errors import DataError, EmbedrecError, UsageError, library_terms, sh_quote, shorten

MAX_LINE = 1 << 20  # bytes in one line of --users/--pairs input


class _FdReader:
    """The bytes of a pipe or terminal read as they arrive (os.read), with a buffer of its own, so that
    :meth:`pending` can tell whether a next line is there without waiting: a batch of --users/--pairs input is
    answered as soon as the input pauses, not at 4,096 lines or its end (a review: '(echo 1; sleep 3; echo 2) |
    recommend --users -' answered nothing until the producer finished). Python's buffered reader cannot say
    whether its buffer holds a line without a read that may block."""

    CHUNK = 1 << 16

    def __init__(self, fd: int):
        self.fd, self.buf, self.pos, self.eof = fd, bytearray(), 0, False

    def _fill(self) -> bool:
        if self.eof:
            return False
        while True:
            try:
                chunk = os.read(self.fd, self.CHUNK)
                break
            except BlockingIOError:  # a non-blocking descriptor (a review: an internal error): wait for it
                import select

                select.select([self.fd], [], [])
        if not chunk:
            self.eof = True
            return False
        if self.pos > len(self.buf) // 2:  # drop what was read (each line is not copied out of a large buffer)
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk
        return True

    def peek(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n and self._fill():
            pass
        return bytes(self.buf[self.pos:self.pos + n])

    def readline(self, limit: int) -> bytes:
        while True:
            i = self.buf.find(b"\n", self.pos, self.pos + limit)
            if i >= 0 or len(self.buf) - self.pos >= limit or not self._fill():
                end = i + 1 if i >= 0 else min(len(self.buf), self.pos + limit)
                line, self.pos = bytes(self.buf[self.pos:end]), end
                return line

    def read(self, n: int = -1) -> bytes:  # for gzip.GzipFile
        if n is None or n < 0:
            while self._fill():
                pass
            n = len(self.buf) - self.pos
        elif len(self.buf) == self.pos:
            self._fill()
        out, self.pos = bytes(self.buf[self.pos:self.pos + n]), min(len(self.buf), self.pos + n)
        return out

    def pending(self) -> bool:
        """Whether a next line that is data (not blank, whitespace or a '#' line, which are skipped: waiting on
        the read after one stalled the answers before it, a review), or the end, is there without waiting for the
        writer on the other end; what the input holds now is read in to tell."""
        import select

        while True:
            if self.eof or self._data_line():
                return True
            try:
                if not select.select([self.fd], [], [], 0)[0]:
                    return False
            except (OSError, ValueError):
                return True
            if not self._fill():  # readable: a read does not wait (the end, or more bytes)
                return True

    def _data_line(self) -> bool:
        """Whether the buffer holds a whole line after ``pos`` with something in it besides a comment."""
        start = self.pos
        while (end := self.buf.find(b"\n", start)) >= 0:
            text = self.buf[start:end].decode("utf-8", "replace").strip()
            if text and not text.startswith("#"):
                return True
            start = end + 1
        return False


def _live_fd(fh) -> int | None:
    """The descriptor of ``fh`` where it is a pipe, a terminal or a socket (input that may pause), on a system
    with select() over them; None for a regular file, or where it cannot tell."""
    import stat

    if os.name != "posix":
        return None
    try:
        fd = fh.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return None
    return fd if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode) else None


class _Lines:
    """Lines of a text file (or stdin) decoded as UTF-8 one at a time: a bad byte is a DataError naming
    file:line instead of a UnicodeDecodeError out of the middle of a batch. :meth:`ready` says whether a next
    line is there without waiting (a pipe or a terminal: the batches end where the input pauses)."""

    lines_of_a_file = True  # Model.recommend_stream: its '#' lines may be comments (a list's items never are)

    def __init__(self, fh, name: str):
        self.fh, self.name = fh, name
        self._live = None  # the _FdReader of a pipe or terminal, once reading

    def ready(self) -> bool:
        return self._live.pending() if self._live is not None else True

    def regular(self) -> tuple[int, int] | None:
        """(the offset reading starts at, the size) where the input is a regular file (``--users FILE``, or stdin
        redirected from one), so that the bytes read so far (:meth:`offset`) have a total; None for a pipe, a
        terminal, a socket or a stream without a descriptor. Nothing is read."""
        import stat

        try:
            fd = self.fh.fileno()
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or self.fh.peek(2)[:2] == b"\x1f\x8b":
                return None  # (gzip reads its compressed bytes well ahead: a code review's bar stood at 100%)
            return self.fh.tell(), st.st_size
        except (AttributeError, OSError, ValueError):
            return None

    def offset(self) -> int:
        """Where reading has got to in a regular file's bytes (:meth:`regular`: not a gzip file's)."""
        return self.fh.tell()

    def from_terminal(self) -> bool:
        """Whether the lines are typed at a terminal."""
        try:
            return os.isatty(self.fh.fileno())
        except (AttributeError, OSError, ValueError):
            return False

    def __iter__(self):
        fh, n = self.fh, 0
        fd = _live_fd(fh)
        if fd is not None:  # read from the descriptor itself: nothing has read this input before its lines
            fh = self.fh = self._live = _FdReader(fd)
        elif not hasattr(fh, "peek"):  # a stream without a look-ahead buffer (io.BytesIO)
            import io

            fh = self.fh = io.BufferedReader(fh)
        if fh.peek(2)[:2] == b"\x1f\x8b":  # gzip ('ids.txt.gz', or gzip -c ... | --users -)
            import gzip

            fh = gzip.GzipFile(fileobj=fh)
            self._live = None  # its lines are inside the deflate stream: batches of recommend.batch_size
        try:
            if fh.peek(2)[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with its byte-order mark (Excel's 'Unicode
                yield from self._utf16(fh)                    # text', PowerShell's >): read as ingest reads it (a red
                return                                        # team); inside the try: a gzip of it cut short too
            while True:
                raw = fh.readline(MAX_LINE + 1)  # bounded: a 2 GB line (or a gzip bomb of one) is not read whole
                if not raw:
                    break
                n += 1
                if n == 1:
                    _refuse_other_formats(self.name, raw)
                if len(raw) > MAX_LINE and not raw.endswith(b"\n"):  # MAX_LINE bytes and its newline pass
                    raise DataError(f"{self.name}:{n}: the line is longer than {MAX_LINE:,} bytes; give one entry "
                                    "per line")
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{self.name}:{n}: cannot decode byte 0x{raw[e.start]:02x} as UTF-8; save the "
                                    "file as UTF-8 text (one entry per line)") from None
                yield text[:-2] + "\n" if text.endswith("\r\n") else text
        except (EOFError, OSError, zlib.error) as e:  # gzip: truncated, or damaged deflate data, after line n
            if fh is self.fh:
                raise
            from embedrec.errors import first_line

            n = max(n, getattr(self, "_utf16_lines", 0))  # (a UTF-16 file's lines are counted by _utf16)
            raise DataError(f"{self.name}:{n + 1}: the gzip stream is damaged or cut short ({first_line(e)}); "
                            "compress the file again") from None


    def _utf16(self, fh):
        """The lines of a UTF-16 input (its byte-order mark first), decoded as they are read: each piece up to a
        0x0a byte fed to one incremental decoder, which keeps a code unit cut at the piece's end for the next."""
        import codecs

        decoder, pending, n = codecs.getincrementaldecoder("utf-16")(), "", 0
        while True:
            raw = fh.readline(MAX_LINE + 1)
            try:
                pending += decoder.decode(raw, final=not raw)
            except UnicodeDecodeError:
                raise DataError(f"{self.name}:{n + 1}: does not decode as UTF-16 (its byte-order mark says it is); "
                                "save the file as UTF-8 or UTF-16 text (one entry per line)") from None
            while "\n" in pending:
                line, pending = pending.split("\n", 1)
                n = self._utf16_lines = n + 1  # (the lines read, for a gzip cut short: __iter__ names the next)
                yield (line[:-1] if line.endswith("\r") else line) + "\n"
            if len(pending) > MAX_LINE:
                raise DataError(f"{self.name}:{n + 1}: the line is longer than {MAX_LINE:,} characters; give one entry "
                                "per line")
            if not raw:
                if pending:
                    yield pending
                return


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _refuse_other_formats(name: str, first: bytes) -> None:
    """A DataError where an input of lines (``--users``, ``--pairs``) is a Parquet file or JSON (embedrec's own
    ``export --topk-all x.parquet``, ``--format json``/``jsonl`` output), by its ``first`` line's bytes: a shell
    review was told of an undecodable byte, or of a line's fields, not of the format."""
    text = first.strip()
    kind = None
    if first.startswith(b"PAR1") and (len(first) > 4 and first[4] < 0x20 and first[4] not in b"\t\r\n" or
                                       b"\x00" in first or not _utf8(first)):  # a page header's bytes after the
        kind = "a Parquet file"  # magic (0x15), or binary: a text id 'PAR1001' is a line (reviews)
    elif text in (b"[", b"[]") or text.startswith(b"[{"):
        kind = "a JSON array"
    elif text.startswith(b"{") and text.endswith(b"}"):
        try:
            kind = "JSON lines" if isinstance(json.loads(text), dict) else None
        except ValueError:  # a text id that starts with '{': a line as any other
            kind = None
    if kind:
        read = "pd.read_parquet(path)" if kind.endswith("Parquet file") else \
            f"pd.read_json(path{', lines=True' if kind == 'JSON lines' else ''})"
        raise DataError(f"{name}: {kind}, where CSV or TSV text is read; give CSV or TSV (embedrec writes it with "
                        f"--format csv or tsv; in pandas, {read}.to_csv(out, index=False))")


def refuse_empty(value, param, ctx, kind: str) -> None:
    """An empty path (``--run "$RUN"`` with RUN unset) is a usage error naming the option: click and the commands
    took '' as not given, so the default run was served or trained over (a red team)."""
    if isinstance(value, str) and value == "":
        name = "/".join(param.opts) if isinstance(param, click.Option) else \
            f"argument {param.human_readable_name}" if param is not None else "a path"
        raise click.UsageError(f"{name} '': the path is empty (an unset variable?); give a {kind}", ctx)


class PathParam(click.Path):
    """click.Path for a path a user names, which refuses an empty one (:func:`refuse_empty`); ``kind``: what to
    give instead, said in that error (default: from file_okay/dir_okay)."""

    def __init__(self, *args, kind: str | None = None, **kw):
        super().__init__(*args, **kw)
        self.kind = kind or ("folder path" if not self.file_okay else "file path" if not self.dir_okay else "path")

    def convert(self, value, param, ctx):
        refuse_empty(value, param, ctx, self.kind)
        from embedrec.argcheck import path_problem

        why = path_problem(value)  # '~/x' unexpanded, a NUL, a name over 255 bytes: one line for every path option
        if why:  # (a review: --per-user '~/pu.csv' made a folder named '~', as -o once did)
            name = "/".join(param.opts) if isinstance(param, click.Option) else \
                f"argument {param.human_readable_name}" if param is not None else "the path"
            raise click.UsageError(f"{name} {why}; give a valid {self.kind}", ctx)
        return super().convert(value, param, ctx)


class LineFile(click.File):
    """click.File for line-oriented input that reports undecodable bytes by file:line."""

    def __init__(self):
        super().__init__("rb", lazy=False)

    def convert(self, value, param, ctx):
        if isinstance(value, _Lines):
            return value
        refuse_empty(value, param, ctx, "file path, or - for standard input")
        if isinstance(value, str) and value.startswith("@") and not os.path.exists(value) and \
                (value == "@-" or os.path.exists(value[1:])):  # --liked's @FILE form given here (a pipeline
            value = value[1:]  # review: --users @u.txt was 'file not found'): the file itself, as --users u.txt
            # (a file really named so comes first), @- standard input
        if isinstance(value, (str, os.PathLike)) and value != "-" and not os.path.exists(value):
            from embedrec.errors import DataError
            from embedrec.fsutil.files import loop_error

            opt = param.opts[0] if param else "input"  # a loop of links said as one, as a run's files are (a red team)
            loop = loop_error(value, f"{opt} file", "give the file's own path, or - to read standard input", DataError)
            if loop is not None:
                raise loop
            tilde = " (the shell left '~' unexpanded: write the path out, e.g. $HOME/...)" \
                if str(value).startswith("~") else ""  # (a review)
            raise DataError(f"{click.format_filename(value)}: file not found ({param.opts[0] if param else 'input'}); "
                            f"check the path{tilde}, or give - to read standard input")
        if value == "-" and sys.stdin is None:  # <&-
            from embedrec.errors import DataError

            opt = param.opts[0] if param else "input"
            raise DataError(f"{opt} -: standard input is closed; pipe the input in or give a file instead of -")
        fh = super().convert(value, param, ctx)
        return _Lines(fh, "<stdin>" if value == "-" else click.format_filename(value))


class Text(click.ParamType):
    """An option's words (a title, an id, a genre), whatever the terminal's encoding: Python decodes the command
    line with the locale's, so under LC_ALL=C without UTF-8 mode 'Misérables' arrived as 'Mis\\udcc3\\udca9rables'
    and a Latin-1 terminal's 'é' as '\\udce9', and no title matched. Their bytes are read again as UTF-8, then as
    Windows-1252 (Latin-1's superset). Paths are not Text: the file system takes their bytes as they came."""

    name = "text"

    def convert(self, value, param, ctx):
        return value if not isinstance(value, str) else from_argv(value)


def from_argv(value: str) -> str:
    """``value`` as the bytes the user typed mean it (see :class:`Text`); unchanged when it decoded cleanly."""
    if not any("\udc80" <= c <= "\udcff" for c in value):
        return value
    try:
        raw = value.encode(sys.getfilesystemencoding(), "surrogateescape")
    except UnicodeEncodeError:  # a character the locale's codec cannot have given: leave it as it is
        return value
    for encoding in ("utf-8", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return value


TEXT = Text()


class OptionalCount(click.ParamType):
    """A whole number >= 1 that an option may be given without (``--explain`` alone, ``--explain 5``): alone it
    is :data:`FROM_CONFIG` (its flag_value), the config's number then applies."""

    name = "count"

    def convert(self, value, param, ctx):
        if value == FROM_CONFIG or isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        try:
            n = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a whole number; give a whole number >= 1, or the option alone", param, ctx)
        if n < 1:
            self.fail(f"{n} is below 1; give a whole number >= 1, or the option alone", param, ctx)
        return n


FROM_CONFIG = "\0config"  # OptionalCount's option given without its number


def usage_error(message: str):
    """Raise an option error found after click parsed the options (an option that does not apply, a pair that
    conflicts) as click's own, so its one line ends like theirs: (see 'embedrec CMD -h')."""
    raise click.UsageError(message, click.get_current_context())


class Report:
    """Whether the command's stdout holds one object (``report``): a write to it that fails part-way leaves none of
    it (``cli.app``'s error line removes it), where rows are cut back to the last whole one."""

    started = False


def report(text: str, nl: bool = True) -> None:
    """``text``, one object (a JSON report, the config's YAML, verify's line), on stdout: a red team's `evaluate
    --format json` under `ulimit -f` left 4096 of its 6126 bytes, no JSON, where none of it can be whole."""
    Report.started = True
    click.echo(text, nl=nl)


def metrics_out(metrics: dict, fmt: str, shown: dict | None = None, notes: bool = True) -> None:
    """``metrics`` written to stdout as ``fmt`` says, then the warnings where the model does no better than its
    baseline; ``shown``: what is written instead (evaluate --metrics' choice), the warnings still of ``metrics``;
    ``notes``: False leaves out what is said of them on stderr (a model behind its baseline, no split to score),
    which a finished run's resume leaves to its one line."""
    from embedrec.output import metric_columns, metric_rows, resolve_format, write_rows

    fmt = resolve_format(fmt)
    warn_of, metrics = metrics, metrics if shown is None else shown
    if fmt == "json":
        from embedrec.fsutil.files import json_safe  # (NaN as null: JSON has no NaN)

        report(json.dumps(json_safe(metrics), indent=2, default=float))
        if notes:
            _behind_baselines(warn_of)
        return
    rows = list(metric_rows(metrics))
    if not rows and not notes:
        return
    if not rows:  # no split to score (a dataset ingested with split.test=0, refit on train+valid): no header alone
        import logging

        if shown is not None and any(True for _ in metric_rows(warn_of)):  # the split scored, the choice not there
            logging.getLogger("embedrec").warning("no metrics to report: this run's evaluation has none of the "
                                                  "metrics --metrics chose; choose others (evaluate -h lists them)")
            return
        logging.getLogger("embedrec").info("no metrics to report: no split to evaluate the model on (ingest with a "
                                           "non-zero split.test to measure it)")
        return
    if fmt == "table":  # on a terminal: metrics as rows, models as columns, so it fits 80 columns
        from embedrec.output import table_parts, transpose_metrics

        # (evaluate's paired rating rows and ranking rows, two tables: the rating baselines' columns beside
        # most_popular's made one too wide)
        parts = table_parts(*transpose_metrics(rows, metric_columns(rows)), bool(metrics.get("paired")))
        for i, (part, cols) in enumerate(parts):
            if i:
                click.echo("")
            write_rows(part, cols, fmt)
    else:
        write_rows(rows, metric_columns(rows), fmt)
    if notes:
        _behind_baselines(warn_of)


def _behind_baselines(metrics: dict) -> None:
    """A warning after the metrics where the model does no better than its baseline (also under -q): the library's
    (``figure_notes.baseline_notes``, which er.train and Model.evaluate log too)."""
    from embedrec.figure_notes import baseline_notes, log_notes

    log_notes(baseline_notes(metrics))


# -k of the commands that score (evaluate, cross-validate): cut-offs, read by cutoffs()
CUTOFFS = click.option("-k", "ks", multiple=True, help="Cut-offs: -k 10 -k 20 or -k 10,20; default train.eval_k.")


def cutoffs(texts, cfg) -> tuple[int, ...] | None:
    """-k's cut-offs (:data:`CUTOFFS`), each text '10' or '10,20' (as tune-dims takes its lists; a first-hour pass:
    '10,20' was 'not a valid integer range'), each a whole number >= 1; none given, the config's train.eval_k
    where it was set, else None (the run's own, what train printed). One reading for evaluate and
    cross-validate."""
    from embedrec.config_checks import MAX_EVAL_K

    ks: list[int] = []
    for text in texts:
        try:
            given = [int(x) for x in text.split(",")]
        except ValueError:
            given = []
        if not given or min(given) < 1:
            raise UsageError(f"-k '{text}': expected whole numbers >= 1, one or comma-separated, e.g. -k 10 or -k "
                             "10,20")
        if max(given) > MAX_EVAL_K:  # as train.eval_k (a first-hour review: -k 5000000 was scored, and named, at it)
            raise UsageError(f"-k '{text}': {max(given)} is above the maximum {MAX_EVAL_K} (as for train.eval_k)")
        ks.extend(given)
    if not ks and cfg.is_set("train.eval_k"):
        ks = list(cfg.train.eval_k)
    return tuple(ks) or None


def metric_names(texts) -> tuple[str, ...] | None:
    """--metrics' names and groups (evaluate's and cross-validate's) as the metric names they stand for (None:
    all, the default); a UsageError naming the ones there are for a name that is none of them."""
    from embedrec.evaluate import METRIC_GROUPS

    if not texts:
        return None
    out: list[str] = []
    for text in texts:
        for name in (n.strip().lower() for n in text.split(",")):
            if name in METRIC_GROUPS:
                out.extend(METRIC_GROUPS[name])
            elif name in METRIC_GROUPS["all"]:
                out.append(name)
            else:
                hint = (f"give it without @K (-k sets the cut-offs: --metrics {name.split('@')[0]} -k "
                        f"{name.split('@')[1]})" if "@" in name and name.split("@")[0] in METRIC_GROUPS["all"] else
                        f"give names from {', '.join(METRIC_GROUPS['all'])}, or a group: "
                        f"{', '.join(METRIC_GROUPS)}")
                raise UsageError(f"--metrics '{shorten(text, 60)}': {shorten(name, 30) or 'an empty name'} is no metric "
                                 f"of evaluate; {hint}")
    return tuple(dict.fromkeys(out))


def unmade_metrics(chosen, explicit: bool, whose: str) -> tuple[str, ...]:
    """Of --metrics' ``chosen`` names (:func:`metric_names`), those the model does not make: rmse and mae score
    predicted ratings, which an implicit model (``explicit`` False) has none of; a UsageError where that is every
    name, so nothing would be left to print (a review: cross-validate --metrics rmse printed an empty table, exit 0,
    and evaluate said it had no split to evaluate on), a warning where some are left. ``whose``: the model, as the
    message names it ("this run's model")."""
    import logging

    from embedrec.metrics import RATING

    unmade = () if chosen is None or explicit else tuple(n for n in chosen if n in RATING)
    if unmade and len(unmade) == len(chosen):
        raise UsageError(f"--metrics {','.join(chosen)}: rmse and mae score an explicit model's predicted ratings, and "
                         f"{whose} is implicit (model.objective: implicit), which ranks movies and predicts no "
                         "rating; choose ranking metrics (ndcg, recall, ..., or the groups accuracy, beyond), or "
                         "train an explicit model (--set model.objective=explicit)")
    if unmade:
        logging.getLogger("embedrec").warning("--metrics: %s left out: %s is implicit (model.objective: implicit) and "
                                              "predicts no rating to score", " and ".join(unmade), whose)
    return unmade


RUN = click.option("--run", "run_dir", type=PathParam(kind="folder path"), help="Run directory (run.dir).")
FMT = click.option("--format", "fmt", type=click.Choice(["auto", "table", "json", "jsonl", "csv", "tsv"]),
                   default="auto", show_default=True, help="Output format (auto: a table on a terminal, else TSV).")
NO_HEADER = click.option("--no-header", is_flag=True, help="csv/tsv: no header line (e.g. for loops that append).")


def moved_to(cfg) -> str | None:
    """Where ``history`` and ``evaluate`` read a run's dataset that has moved (the library's ``moved_to=``): the
    data.prepared given with --set, as given (the library refuses it, naming --set, where it holds no dataset); a
    config file's where it holds one. A config file's that holds none is its default, not a request: the run's
    record is read, and where that folder is gone too its error names the run's record and how to give the new
    folder (--set data.prepared=FOLDER --run RUN). A first-hour review: a file's data.prepared, the folder the run
    was trained on, moved away with it, was said as "--set data.prepared 'ml' does not exist", no --set given."""
    if not cfg.is_set("data.prepared"):
        return None
    if "data.prepared" in cfg.set_keys:
        return cfg.data.prepared or None
    from embedrec.data.layout import holds_dataset

    return cfg.data.prepared if cfg.data.prepared and holds_dataset(cfg.data.prepared) else None


def check_no_header(no_header: bool, fmt: str | None) -> None:
    """--no-header with a format that has no header line: a usage error (recommend and predict alike)."""
    if no_header and fmt in ("json", "jsonl", "table"):
        usage_error(f"--no-header applies to --format csv and tsv, not to --format {fmt}")


# ----------------------------------------------------------------- the text of --liked, --rated, --user-features
def parse_pairs(text: str, option: str, example: str) -> list[tuple[str, str]]:
    """'a=1,b=2' as [(a, '1'), (b, '2')]; a part without '=', an empty item and a name given twice are
    UsageErrors naming ``option`` (as --liked and --rated refuse them)."""
    out: list[tuple[str, str]] = []
    if not text.strip():  # no pairs at all (the command line refuses an empty option before this)
        return out
    parts = text.split(",")
    for n, part in enumerate(parts, 1):
        if not part.strip():
            raise UsageError(f"{option} '{shorten(text)}': item {n} is empty; give comma-separated NAME=VALUE "
                             f"pairs, e.g. {option} {example}")
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} '{shorten(part)}': expected NAME=VALUE, e.g. {option} {example}")
        if key.strip() in (k for k, _ in out):
            raise UsageError(f"{option}: '{shorten(key.strip())}' is given twice; give each one value")
        out.append((key.strip(), value.strip()))
    return out


class Quoted(str):
    """An item of :func:`split_items` given in double quotes: the item's text, with ``head`` the quoted part and
    ``rest`` what followed its closing quote ('=5' in --rated's '"a,b"=5')."""

    head: str
    rest: str


def split_items(text: str, option: str) -> list[str]:
    """The comma-separated items of ``option``'s text. An item in double quotes, as a CSV cell is quoted (``""`` a
    quote inside), may hold a comma: '"a,b",181' (a text id or a title with a comma; a red team: the id 'a,b'
    could not be given at all), and for --rated a '=': '"a,b"=5', '"E=mc2"=5'. An item is quoted only where its
    closing quote is followed by a comma or the end (--rated: or '='): any other quote is a character of the
    item, as before ('"abc', 'x"y', '"a"=b' in --liked)."""
    if '"' not in text:
        return text.split(",")
    after = r"(?:,|=|$)" if option == "--rated" else r"(?:,|$)"
    quoted = re.compile(r'[ \t]*"((?:[^"]|"")*)"(?=[ \t]*' + after + ")")
    out: list[str] = []
    i, n = 0, len(text)
    while True:
        m = quoted.match(text, i)
        if m:
            end = text.find(",", m.end())
            end = n if end < 0 else end
            head, rest = m.group(1).replace('""', '"'), text[m.end():end]
            item = Quoted(head + rest)
            item.head, item.rest = head, rest
            out.append(item)
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            out.append(text[i:end])
        if end >= n:
            return out
        i = end + 1


def comma_hint(option: str) -> str:
    """Why a title with a comma ('Godfather, The') was not found in --liked or --rated (a red team: "'The' matches
    474 movies" said nothing of the split)."""
    example = '\'"Godfather, The"=5,181=4\'' if option == "--rated" else '\'"Godfather, The",181\''
    return (f"{option} splits its list at commas, so a title holding one is two items: give the movie id, the "
            f"title without its comma (e.g. 'The Godfather' for 'Godfather, The'), or the item in double quotes "
            f"({option} {example})")


_ARTICLE = re.compile(r"(the|a|an|l'|la|le|les|il|el|los|las|der|die|das|den)\s*(\(\d{4}\))?")  # a title's end


def with_comma_hint(e: EmbedrecError, option: str, items, text: str = "") -> EmbedrecError:
    """``e`` (an item of a comma-split list not found or ambiguous) with :func:`comma_hint` where the list has
    several items and the message quotes one that is not an id, nor given in double quotes in ``text`` (the
    option's words: a quoted item was read whole, a review)."""
    import copy

    parts = split_items(text, option) if text else []
    quoted = {p.head.strip() for p in parts if isinstance(p, Quoted)}
    words = [str(i) for i in items if not str(i).strip().lstrip("-").isdigit() and str(i).strip() not in quoted]
    if len(items) < 2 or not any(f"'{shorten(w)}'" in e.raw or f"'{shorten(w, 40)}'" in e.raw for w in words):
        return e
    # only where the list looks split inside a title: an item after ', ' (as a title's comma is written) or one
    # that is an article alone ('The (1972)' of 'Godfather, The (1972)'); a list joined by bare commas (paste -sd,)
    # of which one title matched nothing is no such split (a first-hour review: every miss carried the hint)
    pieces = [str(p) for p in parts if not isinstance(p, Quoted)] if parts else [str(i) for i in items]
    if not any(p[:1].isspace() and p.strip() or _ARTICLE.fullmatch(p.strip().casefold()) for p in pieces):
        return e
    out = copy.copy(e)
    out.raw = f"{e.raw}; {comma_hint(option)}"
    out.args = (library_terms(out.raw),)
    return out


def ml100k_example(movie=None) -> str:
    """parse_rated's advice where no run is known: ML-100K's ids ('50=5,181=4'), or ``movie`` at 5."""
    return "50=5,181=4" if movie is None else sh_quote(f"{shorten(str(movie), 40)}=5")


def parse_rated(text: str, example=ml100k_example) -> dict:
    """'50=5,181=4' as {'50': 5.0, '181': 4.0} (the --rated option), each item split at its last '=', as a file's
    MOVIE=RATING line is ('E=mc2=4' is E=mc2 rated 4). ``example(movie=None)``: a --rated value for
    the advice, in the run's own ids and scale where the run is known (Recommender.rated_example: 'm0050=5' of
    the movie named, else two of the run's movies), else ML-100K's. A value that is no number is said so ('x' is
    not a number), and a rating written with a decimal comma (m0050=4,5: two items) is told to write 4.5 (a
    first-hour review: both were 'expected MOVIE=RATING, e.g. --rated 50=5,181=4' on a run of text ids)."""
    out = {}
    parts = split_items(text, "--rated")  # '"a,b"=5' is the movie 'a,b' (csv reads the quotes off)
    for n, part in enumerate(parts, 1):
        if not part.strip():
            if any(p.strip() for p in parts):  # as --liked: an empty item is an error, not skipped
                raise UsageError(f"--rated '{shorten(text)}': item {n} is empty; give comma-separated MOVIE=RATING "
                                 f"pairs, e.g. --rated {example()}")
            continue
        if isinstance(part, Quoted):  # '"E=mc2"=5': the movie is the quoted part, whatever it holds
            mid, sep, r = part.head, "=" if part.rest.strip().startswith("=") else "", \
                part.rest.strip()[1:] if part.rest.strip().startswith("=") else part.rest
        else:  # at the last '=', as a file's MOVIE=RATING line is read ('E=mc2=4': E=mc2 rated 4; a red team)
            mid, sep, r = part.rpartition("=")
        if sep and (not mid.strip() or mid.rstrip().endswith("=")):  # ('50==5', '==1': no movie before the '=')
            raise UsageError(f"--rated '{shorten(text)}': item {n} ('{shorten(part.strip())}') names no movie before "
                             f"'='; give MOVIE=RATING, e.g. --rated {example()}")
        if sep and mid.strip() in out:
            raise UsageError(f"--rated: movie '{shorten(mid.strip())}' is rated twice; give each movie one rating")
        if not sep:
            raise UsageError(f"--rated '{shorten(part)}': expected MOVIE=RATING"
                             f"{_rated_item_hint(parts, n - 1, example)}")
        try:
            out[mid.strip()] = float(r)
        except ValueError:
            said = f"'{shorten(r.strip())}' is not a number" if r.strip() else "no rating follows '='"
            raise UsageError(f"--rated '{shorten(part)}': {said}; give MOVIE=RATING, e.g. --rated "
                             f"{example(mid.strip())}") from None
    return out


def _rated_item_hint(parts: list, i: int, example) -> str:
    """What parse_rated says after 'expected MOVIE=RATING' of item ``i`` of ``parts`` (it has no '='): where it is
    digits after an item of a whole rating ('m0050=4,5'), that a comma separates pairs and a decimal is written
    with a point (m0050=4.5); else an example, and in an item of several that is no id, that a title with a comma
    is split in two (a red team)."""
    part = parts[i].strip()
    if i and re.fullmatch(r"\d+", part):
        before = parts[i - 1]
        mid, sep, r = before.rpartition("=") if not isinstance(before, Quoted) else \
            (before.head, *before.rest.strip().partition("=")[1:]) if before.rest.strip().startswith("=") else \
            ("", "", "")
        if sep and mid.strip() and re.fullmatch(r"[+-]?\d+", r.strip()):
            rating, name = f"{r.strip()}.{part}", shorten(mid.strip(), 40)
            name = f'"{name}"' if isinstance(before, Quoted) else name  # (an id holding a comma stays quoted)
            return (f"; commas separate the pairs, so '{name}={shorten(r.strip())},{shorten(part)}' is two: for a "
                    f"rating of {shorten(rating)} write a point, --rated {sh_quote(f'{name}={shorten(rating)}')}")
    hint = f", e.g. --rated {example()}"
    if len(parts) > 1 and not part.isdigit() and not re.fullmatch(r"\S+\s*[:;]\s*[\d.]+", part):
        hint += f"; {comma_hint('--rated')}"  # ('1:5' is '=' mistyped: a review)
    return hint


def reads_stdin(value, option: str) -> bool:
    """Whether ``option``'s value reads standard input: ``@-`` (--liked, --rated, --exclude, --candidates), or ``-``
    (--users, --movies: a LineFile)."""
    if option in ("--users", "--movies"):
        return getattr(value, "name", None) == "<stdin>"
    return isinstance(value, str) and value.startswith("@") and value[1:].strip() == "-"


def one_stdin(given: dict) -> None:
    """Refuse two options reading standard input: only one can have it (``given``: {option: its value})."""
    lined = ("--users", "--movies")  # (a file's option: '-' is stdin, not '@-')
    readers = [f"{o} {'-' if o in lined else '@-'}" for o, v in given.items() if reads_stdin(v, o)]
    if len(readers) > 1:
        last = readers[-1].split()[0]
        usage_error(f"{' and '.join(readers)} {'both' if len(readers) == 2 else 'all'} read standard input, which "
                    f"only one option can; keep one there and give {'the other' if len(readers) == 2 else 'the others'}"
                    f" as a file ({last} {'FILE' if last in lined else '@FILE'})")


def stdin_bytes(option: str) -> bytes:
    """Standard input, read whole, for ``option @-``, up to serve.userfile.USER_FILE_MAX bytes (a red team: `@-`
    from /dev/zero read until the memory ran out): more refused in one line; closed (``<&-``) refused."""
    from embedrec.serve.userfile import USER_FILE_MAX, read_capped

    if sys.stdin is None:
        raise UsageError(f"{option} @-: standard input is closed; pipe the list in or give a file, e.g. {option} "
                         "@movies.txt")
    stream = getattr(sys.stdin, "buffer", None)
    data = read_capped(stream, USER_FILE_MAX) if stream is not None else \
        sys.stdin.read(USER_FILE_MAX + 1).encode("utf-8", "surrogateescape")  # (a text stream without bytes)
    if data is None or len(data) > USER_FILE_MAX:
        raise UsageError(f"{option} @-: standard input holds more than the {USER_FILE_MAX:,} bytes an @- list is read "
                         "up to (a new user's export is kilobytes); give a shorter list")
    return data


def parse_user_list(text: str, option: str, own: tuple = ()) -> list[str]:
    """``option``'s user ids where the list holds users (``--exclude``/``--candidates`` with ``--audience`` or
    ``--similar-users``: a campaign's opt-outs, a segment): comma-separated ids, or ``@FILE`` of one a line (blank
    and '#' lines skipped, a first line naming the user column, 'user_id' or the run's own (``own``), a header, a
    line in double quotes one CSV field); a line of a table refused naming FILE:LINE."""
    if not text.startswith("@"):
        items = [t.strip() for t in split_items(text, option)]
        if not any(items) or "" in items:
            raise UsageError(f"{option} '{text}': give comma-separated user ids, e.g. {option} 196,186, or @FILE")
        return items
    path, items = _file_items(text, option)
    words = _header_words(own)[0]
    out: list[str] = []
    for n, t in enumerate(items, 1):
        if not t or t.startswith("#"):
            continue
        if len(t) > 1 and t[0] == t[-1] == '"' and '"' not in t[1:-1].replace('""', ''):
            t = t[1:-1].replace('""', '"').strip()
        elif any(sep in t for sep in ("\t", ",", ";")):
            raise UsageError(f"{option} {shorten(text, 80)}: {path}:{n}: '{shorten(t, 40)}' is a table's line, not "
                             "one user id; give one user id per line (a table's first column: cut -d, -f1)")
        if not out and t.lower() in words:  # a header line (as --users skips 'user_id')
            continue
        out.append(t)
    if not out and option == "--candidates":
        raise UsageError(f"{option} {shorten(text, 80)}: the file holds no user ids; give one per line")
    return out


def parse_movie_list(text: str, option: str, own: tuple = ()) -> list[str]:
    """``option``'s movies (--candidates, --exclude): comma-separated ids or titles (as parse_liked), or ``@FILE``: a
    file of ids or titles, one per line (blank lines and '#' lines skipped, a line in double quotes one CSV field, a
    first line that names the movie column, 'movie_id' or 'item_id' or the run's own (``own``: its data.columns'
    (user, movie) names, 'sku' for a log ingested with data.columns.movie=sku), a header), for lists too long for a
    command line.
    A table is refused naming FILE:LINE (:func:`_table_line`): a line of comma-separated ids, a header of several
    columns, a row with a tab or ending in a number ('sku-0111,5'). A file of no ids is refused for --candidates (no
    list could hold a movie) and is nothing to leave out for --exclude (said in a warning: an exclusion list may be
    empty today)."""
    if not text.startswith("@"):
        return parse_liked(text, option)
    return _movie_lines(text, option, *_file_items(text, option), own=own)


def _file_items(text: str, option: str) -> tuple[str, list[str]]:
    """(the path, its lines stripped) of ``option``'s ``@FILE`` (``@-``: standard input)."""
    path = text[1:]
    try:
        from embedrec.serve.userfile import decoded, file_bytes

        if path.strip() == "-":  # standard input (a file named '-': @./-), decoded as a file is (its byte-order
            path = "<stdin>"  # mark, bytes not UTF-8 as '\\x..' escapes: never echoed raw, never a lone surrogate)
            data = stdin_bytes(option)
        else:  # a regular file up to serve.userfile.USER_FILE_MAX (a red team: @/dev/zero read without end)
            data = file_bytes(path, f"{option} {shorten(text, 80)}", f"a file of movie ids, one per line, or "
                              f"comma-separated ids: {option} 50,181")
        items = [line.strip() for line in decoded(data, path).splitlines()]
    except OSError as e:  # a missing input is data's exit 1, as --users FILE's and ingest's (a shell review: 2)
        from embedrec.errors import DataError

        raise DataError(f"{option} {shorten(text, 80)}: cannot read '{path}' ({e.strerror or e}); give a file of "
                         f"movie ids, one per line, or comma-separated ids: {option} 50,181") from None
    return path, items


def parse_exclude(text: str, own: tuple = ()) -> list[str] | dict[str, list[str]]:
    """``--exclude``: :func:`parse_movie_list`'s movies for every list, or, where ``@FILE``'s first line is a header
    naming a user column and a movie column ('user_id,movie_id', tab- or comma-separated; other columns such as a
    rating or a time beside them), each user's own movies: {user id: [movie ids]} from its (user, movie) rows,
    left out of that user's list alone (what users did since training, without update-users). A row without both
    fields is refused naming FILE:LINE. ``own``: the run's own (user, movie) column names, header words too."""
    if not text.startswith("@"):
        return parse_liked(text, "--exclude")
    path, items = _file_items(text, "--exclude")
    pairs = _pair_columns(items, own)
    if pairs is None:
        return _movie_lines(text, "--exclude", path, items, own=own)
    from embedrec.models_lookup import FilePairs

    (n0, sep, ui, mi), out, where = pairs, {}, {}
    for n, t in enumerate(items, 1):
        if n <= n0 or not t or t.startswith("#"):
            continue
        parts = [p.strip().strip('"').strip() for p in t.split(sep)]
        if max(ui, mi) >= len(parts) or not parts[ui] or not parts[mi]:
            raise UsageError(f"--exclude {shorten(text, 80)}: {path}:{n}: '{shorten(t, 40)}' has no user and movie "
                             f"in fields {ui + 1} and {mi + 1}, as the header names them; give a user and a movie on "
                             "every line")
        out.setdefault(parts[ui], []).append(parts[mi])
        where.setdefault((parts[ui], parts[mi]), f"{path}:{n}")
    if not out:
        import logging

        logging.getLogger("embedrec").warning("--exclude %s: the file holds no (user, movie) pairs; nothing to leave "
                                              "out", shorten(text, 80))
    return FilePairs(out, where)


def _header_words(own: tuple) -> tuple[tuple, tuple]:
    """(the user column's header words, the movie column's): serve.stream's, and the run's own column names
    (``own``: (user, movie), its data.columns'), lower case."""
    from embedrec.serve.stream import HEADER_MOVIE_WORDS, HEADER_USER_WORDS

    mine = [str(c).strip().lower() for c in own]
    return (HEADER_USER_WORDS + tuple(mine[:1]), HEADER_MOVIE_WORDS + tuple(mine[1:2]))


def _pair_columns(items: list[str], own: tuple = ()) -> tuple[int, str, int, int] | None:
    """(the header's line number, the separator, the user field, the movie field) where the first line that is not
    blank or a comment names a user column and a movie column (serve.stream's header words, or the run's own
    ``own`` names), else None."""
    HEADER_USER_WORDS, HEADER_MOVIE_WORDS = _header_words(own)  # noqa: N806

    for n, t in enumerate(items, 1):
        if not t or t.startswith("#"):
            continue
        t = t.lstrip("\ufeff")
        for sep in ("\t", ",", ";"):
            low = [p.strip().strip('"').strip().lower() for p in t.split(sep)]
            ui = next((i for i, p in enumerate(low) if p in HEADER_USER_WORDS), None)
            mi = next((i for i, p in enumerate(low) if p in HEADER_MOVIE_WORDS), None)
            if ui is not None and mi is not None:
                return n, sep, ui, mi
        return None
    return None


def _movie_lines(text: str, option: str, path: str, items: list[str], own: tuple = ()) -> list[str]:
    """:func:`parse_movie_list`'s reading of a file's lines: one movie id or title a line (a first line of a movie
    column's name a header: serve.stream's words, or the run's own, ``own``)."""
    HEADER_MOVIE_WORDS = _header_words(own)[1]  # noqa: N806

    out: list[str] = []
    first = True
    for n, t in enumerate(items, 1):
        if not t or t.startswith("#"):
            continue
        why = _table_line(t, first, path, HEADER_MOVIE_WORDS)
        if why:
            raise UsageError(f"{option} {shorten(text, 80)}: {path}:{n}: '{shorten(t, 40)}' {why}")
        if len(t) > 1 and t[0] == t[-1] == '"':  # one CSV field in quotes (a review: kept, so the title was unknown)
            t = t[1:-1].replace('""', '"').strip()
        if first and t.lower() in HEADER_MOVIE_WORDS:  # a one-column table's header, as --users skips 'user_id'
            first = False
            continue
        first = False
        out.append(t)
    if not out and option == "--exclude":  # (a review: an exclusion list may be empty, not a reason to fail)
        import logging

        logging.getLogger("embedrec").warning("%s %s: the file holds no movie ids; nothing to leave out", option,
                                              shorten(text, 80))
    elif not out:
        raise UsageError(f"{option} {shorten(text, 80)}: the file holds no movie ids; give one per line")
    return out


_TABLE_SEPARATORS = {",": ("-d, -f1", "a comma"), "\t": ("-f1", "a tab"), ";": ("-d';' -f1", "a semicolon")}


def _table_line(t: str, first: bool, path: str, header_words: tuple = ()) -> str | None:
    """Why line ``t`` of a --candidates/--exclude file is a table's, not one movie (a first-hour review: a stock file
    'item_id,stock' / 'sku-0111,5' was read a whole line an id, 'none of the 4 --candidates is a movie'), or None.
    A table is refused rather than its first column read: its other columns (a stock of 0, a licence's end) may
    decide which rows belong, which embedrec cannot know. A title with a comma ('Godfather, The') is one movie.
    ``header_words``: a movie column's names (:func:`_header_words`; serve.stream's where none is given)."""

    from embedrec.data.ids import is_finite_number_text
    from embedrec.serve.stream import HEADER_MOVIE_WORDS

    header_words = header_words or HEADER_MOVIE_WORDS
    if len(t) > 1 and t[0] == t[-1] == '"' and '"' not in t[1:-1].replace('""', ''):
        return None  # one quoted CSV field, whatever it holds
    for sep, (cut, what) in _TABLE_SEPARATORS.items():
        if sep not in t:
            continue
        parts = [p.strip().strip('"').strip() for p in t.split(sep)]
        fix = f"give one movie id or title per line (a table's first column: cut {cut} {sh_quote(path)}"
        if first and parts[0].lower() in header_words:
            return (f"is a table's header ({len(parts)} columns, separated by {what}), not a movie; {fix} | tail -n +2, "
                    "without its header)")
        if sep == "," and all(p.lstrip("+-").isdigit() for p in parts):  # '194,8': ids on one line (a review)
            return "holds several ids; give one movie id or title per line"
        if sep == "\t" or is_finite_number_text(parts[-1]) and parts[0]:  # 'sku-0111,5': an id and its count (no title has a tab)
            return f"is a table's row ({len(parts)} fields, separated by {what}), not one movie; {fix})"
    return None


def parse_liked(text: str, option: str = "--liked") -> list[str]:
    """'50,181' as ['50', '181'] (the --liked option, or ``option``: --exclude); an empty item is an error, not
    skipped."""
    items = [t.strip() for t in split_items(text, option)]
    if not any(items) or "" in items:
        where = f"item {items.index('') + 1} is empty" if any(items) else "no movie ids"
        raise UsageError(f"{option} '{text}': {where}; give comma-separated movie ids, e.g. {option} 50,181,172")
    return items
