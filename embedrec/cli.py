"""The click layer: parse options, load the config, call one library function, format the result.

Errors from the library (:class:`EmbedrecError`) become one line on stderr and an exit code here, in one place.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from typing import TYPE_CHECKING

import click

from embedrec import __version__
from embedrec.errors import EmbedrecError

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config

log = logging.getLogger("embedrec")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _State:
    traceback = False
    quiet = False
    g_quiet = g_verbose = g_traceback = False  # -q/-v/--traceback given before the subcommand
    config_path = None  # -c and --set as given, to repeat them in hints (e.g. the exact resume command)
    overrides: tuple = ()


class _BarAwareHandler(logging.StreamHandler):
    """Log lines go above a live tqdm bar (tqdm.write) instead of into it; tqdm is never imported for this."""

    def emit(self, record):
        tq = sys.modules.get("tqdm")
        if tq is not None and getattr(tq.tqdm, "_instances", None):
            try:
                tq.tqdm.write(self.format(record), file=self.stream)
            except Exception:
                self.handleError(record)
            return
        super().emit(record)


def _setup_logging(quiet: bool, verbose: bool) -> None:
    from embedrec.errors import TermsFilter

    log.handlers.clear()
    for f in list(log.filters):
        log.removeFilter(f)
    log.addFilter(TermsFilter(cli=True))  # log lines name options as flags (--set train.lr=0.01, --overwrite)
    handler = _BarAwareHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def progress_enabled() -> bool:
    return not _State.quiet and sys.stderr.isatty()


class Group(click.Group):
    def invoke(self, ctx):
        from embedrec.errors import shorten

        try:
            rv = super().invoke(ctx)
            sys.stdout.flush()  # a full disk behind stdout (> /dev/full) fails here, not at exit
            return rv
        except EmbedrecError as e:
            if _State.traceback:
                raise
            _error_line(shorten(e.cli_message(), 2000))
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            if _State.traceback:
                raise
            _error_line("interrupted: nothing half-written was left behind", prefix="")
            sys.exit(130)
        except BrokenPipeError:
            _quiet_stdout()
            sys.exit(0)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as e:  # a bug: still one line, the traceback on request
            if _State.traceback:
                raise
            known = _known_error(e)
            if known is not None:
                _error_line(known)
                sys.exit(1)
            _error_line(f"internal error ({type(e).__name__}: {shorten(e, 300)}); rerun with --traceback and report it")
            sys.exit(1)


def _error_line(text: str, prefix: str = "error: ") -> None:
    """One line on stderr; if stderr itself cannot be written there is nowhere left to say it."""
    try:
        click.echo(f"{prefix}{text}".replace("\n", " "), err=True)
    except OSError:
        pass


def _quiet_stdout() -> None:
    """After EPIPE (| head): point stdout at /dev/null so the interpreter's final flush does not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _known_error(e: Exception) -> str | None:
    """Environment failures that are not bugs: a full disk, a read-only file system, undecodable input."""
    from embedrec.errors import shorten
    from embedrec.fsutil import io_error

    if isinstance(e, OSError):
        err = io_error(e, None, "write to another folder (run.dir, -o)")
        if err is not None:
            _quiet_stdout()
            return str(err) if getattr(e, "filename", None) else \
                f"cannot write the output ({e.strerror}); free space or write it elsewhere"
    if isinstance(e, UnicodeDecodeError):
        return (f"cannot decode byte 0x{e.object[e.start]:02x} at offset {e.start} of the input as {e.encoding}; "
                "save it as UTF-8 text")
    if isinstance(e, MemoryError):
        return f"out of memory ({shorten(e, 120) or 'MemoryError'}); use a smaller input or setting"
    return None


class _Lines:
    """Lines of a text file (or stdin) decoded as UTF-8 one at a time: a bad byte is a DataError naming
    file:line instead of a UnicodeDecodeError out of the middle of a batch."""

    def __init__(self, fh, name: str):
        self.fh, self.name = fh, name

    def __iter__(self):
        from embedrec.errors import DataError

        for n, raw in enumerate(self.fh, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{self.name}:{n}: cannot decode byte 0x{raw[e.start]:02x} as UTF-8; save the file "
                                "as UTF-8 text (one entry per line)") from None
            yield text[:-2] + "\n" if text.endswith("\r\n") else text


class LineFile(click.File):
    """click.File for line-oriented input that reports undecodable bytes by file:line."""

    def __init__(self):
        super().__init__("rb", lazy=False)

    def convert(self, value, param, ctx):
        if isinstance(value, _Lines):
            return value
        fh = super().convert(value, param, ctx)
        return _Lines(fh, "<stdin>" if value == "-" else click.format_filename(value))


def common(fn):
    """-c/--config, --set, -q/--quiet, -v/--verbose, --traceback for every subcommand."""

    @click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), default=None,
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
        quiet, verbose = quiet or _State.g_quiet, verbose or _State.g_verbose  # also accepted before the subcommand
        _State.traceback = traceback or verbose or _State.g_traceback
        _State.quiet = quiet
        _State.config_path, _State.overrides = config_path, tuple(overrides)
        _setup_logging(quiet, verbose)
        from embedrec.config import find_config, load_config

        path = find_config(config_path)
        if path is not None and config_path is None:
            log.debug("config: %s", path)
        cfg = load_config(path, overrides)
        return fn(cfg, **kw)

    return wrapper


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="embedrec")
@click.option("-q", "--quiet", "g_quiet", is_flag=True, help="As the subcommand's -q (given before it).")
@click.option("-v", "--verbose", "g_verbose", is_flag=True, help="As the subcommand's -v.")
@click.option("--traceback", "g_traceback", is_flag=True, help="As the subcommand's --traceback.")
def main(g_quiet, g_verbose, g_traceback):
    """Embedding-based movie recommendation: ingest MovieLens (or your own ratings), train a PyTorch
    matrix-factorization model, pick the embedding size, and serve top-K movies from a FAISS index.

    \b
    Quick start:
      embedrec ingest ml-100k
      embedrec train
      embedrec recommend --user 196
    """
    _State.g_quiet, _State.g_verbose, _State.g_traceback = g_quiet, g_verbose, g_traceback
    _State.traceback = g_traceback or g_verbose


# ----------------------------------------------------------------------------------------------- config

@main.command("config", context_settings=CONTEXT)
@click.argument("action", type=click.Choice(["show"]), default="show")
@common
def config_cmd(cfg: Config, action):
    """Print the resolved config (defaults < file < --set) as YAML.

    \b
    Example:
      embedrec config -c configs/default.yaml --set model.dim=64
    """
    click.echo(cfg.to_yaml(), nl=False)


# ----------------------------------------------------------------------------------------------- ingest

@main.command(context_settings=CONTEXT)
@click.argument("source", required=False)
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Dataset directory (data.prepared).")
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset directory.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="json: print the summary as JSON on stdout.")
@common
def ingest(cfg: Config, source, output, overwrite, fmt):
    """Turn a MovieLens release or a ratings file into a clean, indexed, split dataset.

    SOURCE is a release name (ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, ml-latest-small, ml-latest),
    a local .zip or folder of any MovieLens or RecBole layout, a ratings CSV/TSV/Parquet, or - for stdin.
    It overrides data.source.

    \b
    Examples:
      embedrec ingest ml-100k
      embedrec ingest ratings.csv -o data/prepared/mine --set data.columns.user=uid
      embedrec ingest ml-1m --set split.method=user_time --format json
    """
    from embedrec.config import Config, set_explicit
    from embedrec.ingest import format_summary
    from embedrec.ingest import ingest as run_ingest

    from_config = "data.prepared" in getattr(cfg, "_explicit", ()) or "data.source" in getattr(cfg, "_explicit", ())
    if source:
        cfg = set_explicit(cfg, "data.source", source)
    if output:
        cfg = set_explicit(cfg, "data.prepared", output)
    summary = run_ingest(cfg.data, cfg.split, output=cfg.data.prepared, overwrite=overwrite,
                         progress=progress_enabled(), full_config=cfg.to_dict())
    if not _State.quiet:
        click.echo(format_summary(summary), err=True)
        if cfg.data.prepared != Config().data.prepared and not from_config:
            log.info("train on it with: embedrec train --set data.prepared=%s", cfg.data.prepared)
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2))


def _metrics_out(metrics: dict, fmt: str) -> None:
    from embedrec.output import metric_columns, metric_rows, resolve_format, write_rows

    fmt = resolve_format(fmt)
    if fmt == "json":
        click.echo(json.dumps(metrics, indent=2, default=float))
        return
    rows = list(metric_rows(metrics))
    if fmt == "table":  # on a terminal: metrics as rows, models as columns, so it fits 80 columns
        from embedrec.output import transpose_metrics

        rows, cols = transpose_metrics(rows, metric_columns(rows))
        write_rows(rows, cols, fmt)
        return
    write_rows(rows, metric_columns(rows), fmt)


RUN = click.option("--run", "run_dir", type=click.Path(file_okay=False), help="Run directory (run.dir).")
FMT = click.option("--format", "fmt", type=click.Choice(["auto", "table", "json", "jsonl", "csv", "tsv"]),
                   default="auto", show_default=True, help="Output format (auto: a table on a terminal, else TSV).")
NO_HEADER = click.option("--no-header", is_flag=True, help="csv/tsv: no header line (e.g. for loops that append).")


@main.command(context_settings=CONTEXT)
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint.")
@RUN
@FMT
@common
def train(cfg: Config, resume, run_dir, fmt):
    """Train embeddings on the prepared dataset (data.prepared) and write the run (run.dir).

    Shows a progress bar with the loss and the validation metric, stops early on the validation metric,
    keeps the best epoch, builds the FAISS index, and prints the final metrics beside the baselines.

    \b
    Examples:
      embedrec train
      embedrec train -c configs/ml100k-explicit.yaml     # rating prediction (for predict)
      embedrec train --resume
      embedrec train --run runs/mine --set data.prepared=data/prepared/mine
    """
    from embedrec.api import train_run
    from embedrec.distributed import lock_run, secondary
    from embedrec.errors import Interrupted

    if run_dir:
        from embedrec.config import set_explicit

        cfg = set_explicit(cfg, "run.dir", run_dir)
    try:
        with lock_run(cfg.run.dir, "embedrec train", cfg.train.device):  # one writer per run dir (checkpoint, metrics.jsonl, publish)
            metrics = train_run(cfg, resume=resume, progress=progress_enabled())
    except Interrupted as e:
        raise Interrupted(e.cli_message().replace("the same command plus --resume", resume_command(run_dir))) from None
    if secondary():  # under torchrun, rank 0 alone reports
        return
    sel = metrics["selection"]
    refit = f"; refit on train+valid for {metrics['epochs_run']} epochs, {metrics['train_seconds']:.1f}s" \
        if metrics.get("refit") else ""
    log.info("best epoch %s of %s (valid %s %.4f), %.1fs%s; run in %s", sel["best_epoch"], sel["epochs_run"],
             sel["metric"], sel["valid"], sel["seconds"], refit, cfg.run.dir)
    _metrics_out(metrics, fmt)


@main.command(context_settings=CONTEXT)
@click.option("--split", type=click.Choice(["valid", "test"]), default="test", show_default=True)
@click.option("-k", "ks", multiple=True, type=click.IntRange(1), help="Cut-offs (repeatable); default train.eval_k.")
@RUN
@FMT
@common
def evaluate(cfg: Config, split, ks, run_dir, fmt):
    """Evaluate a trained run on its validation or test split, beside the baselines.

    Explicit models get RMSE and MAE; every model gets Precision, Recall, NDCG, MAP, HitRate, MRR and
    coverage at each K (candidates: all movies minus the user's movies in train, and in valid when
    evaluating on test).

    \b
    Example:
      embedrec evaluate --split test -k 10 -k 20 --format json
    """
    from embedrec.evaluate import evaluate_run

    metrics = evaluate_run(run_dir or cfg.run.dir, None, split, ks or tuple(cfg.train.eval_k), cfg.train.device)
    log.info("ranked each user's candidates: all movies minus those the user rated in %s",
             metrics["excluded"].replace("+", " and "))
    _metrics_out(metrics, fmt)


@main.group(cls=Group, context_settings=CONTEXT)
def index():
    """Manage a run's FAISS index."""


@index.command("rebuild", context_settings=CONTEXT)
@RUN
@common
def index_rebuild(cfg: Config, run_dir):
    """Rebuild the index of a trained run with the current index.* settings.

    \b
    Example:
      embedrec index rebuild --set index.kind=hnsw --set index.ef_search=64
    """
    from embedrec.run import rebuild_index

    meta = rebuild_index(run_dir or cfg.run.dir, cfg.index)
    click.echo(json.dumps(meta, indent=2))


@main.command(context_settings=CONTEXT)
@click.argument("path", required=False, type=click.Path(file_okay=False))
@RUN
@common
def verify(cfg: Config, path, run_dir):
    """Check every file of a run, or of a prepared dataset, against the SHA-256 its manifest records.

    Commands check the files they open as they open them, but files above 64 MiB only by size (hashing
    them on every start would cost more than it is worth); verify reads everything. PATH is a run
    directory (default: run.dir), one of its artifacts-* folders, or a dataset directory.

    \b
    Examples:
      embedrec verify
      embedrec verify runs/ml-25m                  # or: embedrec verify --run runs/ml-25m
      embedrec verify data/prepared/ml-100k
    """
    from embedrec.errors import UsageError
    from embedrec.run import verify_path

    if path and run_dir:
        raise UsageError(f"give PATH or --run, not both ('{path}', '{run_dir}')")
    info = verify_path(path or run_dir or cfg.run.dir)
    click.echo(f"ok: {info['what']} '{info['path']}': {info['files']} files ({info['bytes']:,} bytes) match "
               "their checksums")




@main.command(context_settings=CONTEXT)
@click.option("--user", "user", help="A user id from the source data.")
@click.option("--users", "users_file", type=LineFile(), help="A file of user ids, one per line; - for stdin.")
@click.option("--movie", "movie", help="A movie id or title words: similar movies.")
@click.option("--liked", help="Comma-separated movie ids a new user liked (explicit models: as top ratings).")
@click.option("--rated", help="Comma-separated movie=rating pairs for a new user, e.g. 50=5,181=4.")
@click.option("--user-features", "user_features",
              help="A new user from demographics (feature models), e.g. age=25,gender=F,occupation=writer.")
@click.option("-k", "k", type=click.IntRange(1), help="How many movies (recommend.k).")
@click.option("--include-seen", is_flag=True, help="Also recommend movies the user rated in training.")
@click.option("--genre", "genres", multiple=True, help="Only movies of this genre (repeatable: any of them).")
@click.option("--year-min", type=int, help="Only movies from this year on.")
@click.option("--year-max", type=int, help="Only movies up to this year.")
@click.option("--strict", is_flag=True, help="With --users: fail on an unknown id instead of skipping it.")
@click.option("--fallback", type=click.Choice(["none", "popular"]), help="For unknown users (recommend.fallback).")
@RUN
@FMT
@NO_HEADER
@common
def recommend(cfg: Config, user, users_file, movie, liked, rated, user_features, k, include_seen, genres, year_min, year_max,
              strict, fallback, run_dir, fmt, no_header):
    """Top-K movies for a user, many users, a new user, or movies similar to a movie.

    score: for explicit models the predicted rating, clipped to the rating scale (as in predict); for implicit
    models the model's ranking score (higher is better, comparable within one run); with --movie the cosine
    similarity to that movie; with --fallback popular the movie's number of training ratings.

    --users reads ids as they come (a header line 'user_id' is skipped) and flushes each batch of
    recommend.batch_size answers; --set recommend.batch_size=1 answers line by line (for a co-process).

    \b
    Examples:
      embedrec recommend --user 196 -k 5
      cut -f1 users.txt | embedrec recommend --users - --format jsonl
      embedrec recommend --movie "toy story" --format csv
      embedrec recommend --liked 50,181,172 --genre Comedy
      embedrec recommend --rated 50=5,181=4,313=1
      embedrec recommend --user-features age=25,gender=F,occupation=writer
    """
    from embedrec.api import open as open_model
    from embedrec.errors import NotFoundError, UsageError
    from embedrec.output import resolve_format, write_rows
    from embedrec.serve.recommender import (
        COLUMNS,
        as_rows,
        parse_liked,
        parse_pairs,
        parse_rated,
        recommend_many,
        write_delimited,
        write_jsonl,
    )

    modes = [x for x in (user, users_file, movie, liked or rated, user_features) if x]
    if len(modes) != 1:
        raise UsageError("give exactly one of --user, --users, --movie, --liked/--rated, or --user-features")
    k = k or cfg.recommend.k
    fallback = fallback or cfg.recommend.fallback
    model = open_model(run_dir or cfg.run.dir, cfg)
    fmt = resolve_format(fmt)
    filters = {"genres": genres, "year_min": year_min, "year_max": year_max}
    if users_file is not None:  # streamed in batches: rows as they come, through the fast writers
        rec = model.engine
        triples = recommend_many(rec, users_file, k, include_seen=include_seen,
                                 allowed=rec.allowed(genres, year_min, year_max), strict=strict, fallback=fallback,
                                 batch=cfg.recommend.batch_size, on_batch=sys.stdout.flush,
                                 name=getattr(users_file, "name", "<input>"))
        if fmt in ("csv", "tsv"):
            write_delimited(rec, triples, fmt, sys.stdout, header=not no_header)
        elif fmt == "jsonl":
            write_jsonl(rec, triples, sys.stdout)
        else:
            write_rows(as_rows(rec, triples), COLUMNS, fmt, header=not no_header)
        return
    if user is not None:
        try:
            res = model.recommend([user], k, missing="popular" if fallback == "popular" else "error",
                                  exclude_seen=not include_seen, **filters)
        except NotFoundError as e:
            if e.kind != "user":
                raise
            raise NotFoundError(f"user '{user}' is not in the training data ({model.engine.P.shape[0]:,} users); use "
                                "--fallback popular, or --liked/--rated to recommend for a new user") from None
        if res.unknown:
            log.warning("user '%s' is not in the training data: most popular movies instead", user)
    elif movie is not None:
        res = model.similar(model.find_movie(movie), k, **filters)
    elif user_features:
        res = model.recommend_features(dict(parse_pairs(user_features, "--user-features", "age=25,gender=F")), k,
                                       **filters)
    else:
        res = model.recommend_new(parse_liked(liked) if liked else [], parse_rated(rated) if rated else {}, k,
                                  exclude_seen=not include_seen, **filters)
    write_rows(res.to_rows(), res.columns, fmt, header=not no_header)


def resume_command(run_dir: str | None) -> str:
    """The train command as given (-c, --set, --run) plus --resume, quoted for a POSIX shell."""
    import shlex

    args = ["embedrec", "train"]
    if _State.config_path:
        args += ["-c", str(_State.config_path)]
    for o in _State.overrides:
        args += ["--set", o]
    if run_dir:
        args += ["--run", str(run_dir)]
    return shlex.join(args + ["--resume"])


@main.command(context_settings=CONTEXT)
@click.option("--pairs", type=LineFile(), required=True, help="CSV/TSV of user,movie pairs (header optional); - for stdin.")
@click.option("--strict", is_flag=True, help="Fail on an unknown user or movie instead of scoring it from the biases.")
@RUN
@FMT
@NO_HEADER
@common
def predict(cfg: Config, pairs, strict, run_dir, fmt, no_header):
    """The model's score for (user, movie) pairs: the predicted rating for explicit models.

    Further columns of the input (e.g. the true rating) are passed through between movie_id and fallback,
    named as in the input's header line (col3, col4, ... without one).

    A user or movie not in the training data is scored from what the model has, as Surprise does (explicit:
    mean + movie bias for an unknown user, mean + user bias for an unknown movie, the mean for both; implicit:
    the movie bias where the model has one, else empty); the fallback column says which: none, user_unknown,
    movie_unknown or both.

    \b
    Example:
      printf '196,242\\n186,302\\n' | embedrec predict --pairs - --format csv
    """
    from embedrec.api import open as open_model
    from embedrec.api import predict_lines
    from embedrec.output import resolve_format, write_rows

    model = open_model(run_dir or cfg.run.dir, cfg)
    columns, rows = predict_lines(model, pairs, pairs.name, strict)
    write_rows(rows, columns, resolve_format(fmt), header=not no_header)


def _floats(text: str | None, what: str) -> list[float] | None:
    from embedrec.errors import UsageError

    if not text:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{what} '{text}': expected comma-separated numbers, e.g. 1e-4,1e-3") from None


def _tolerance(text: str | None) -> float | None:
    from embedrec.errors import UsageError

    if text is None:
        return None
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise UsageError(f"--tolerance '{text}': expected a share such as 1% or 0.01") from None


@main.command("tune-dims", context_settings=CONTEXT)
@click.option("--dims", help="Comma-separated dimensions (tune.dims); the fourth-root value is always added.")
@click.option("--weight-decay", "wds", help="Comma-separated L2 strengths to sweep per dimension (tune.weight_decays): train.als_reg for als, the weight decays otherwise.")
@click.option("--tolerance", help="Choose the smallest dim within this of the best valid metric, e.g. 1%.")
@click.option("--write", "write_path", type=click.Path(dir_okay=False), help="Write a config with the choice here.")
@click.option("--fresh", is_flag=True, help="Redo finished trials instead of keeping them.")
@click.option("--format", "fmt", type=click.Choice(["auto", "table", "json", "csv", "tsv", "jsonl"]),
              default="auto", show_default=True, help="Output format (auto: a table on a terminal, else TSV).")
@common
def tune_dims(cfg: Config, dims, wds, tolerance, write_path, fresh, fmt):
    """Sweep the embedding dimension on the validation split and show where more dimensions stop helping.

    \b
    Examples:
      embedrec tune-dims
      embedrec tune-dims --dims 32,64,128,256 --tolerance 1% --write tuned.yaml
    """
    from embedrec.output import resolve_format, write_rows
    from embedrec.tune import sweep, write_choice

    dim_list = [int(x) for x in _floats(dims, "--dims")] if dims else None
    res = sweep(cfg, dim_list, _floats(wds, "--weight-decay"), _tolerance(tolerance), fresh, progress_enabled())
    chosen = res["chosen"]
    fmt = resolve_format(fmt)
    if fmt == "json":
        click.echo(json.dumps(res, indent=2, default=float))
    else:
        m = res["metric"]
        rows = [{**t, "note": ", ".join(x for x, on in (("fourth-root", t["fourth_root"]), ("chosen", t is chosen)) if on)}
                for t in res["trials"]]
        cols = ["dim", "weight_decay", "params", "epochs", "train_loss", "train_metric", "valid_metric",
                "test_metric", "seconds", "peak_mem_mb", "note"]
        if fmt in ("table",):
            click.echo(f"metric: {m} (train_metric: the same on training data; test_metric: reported, not used)")
        write_rows(rows, cols, fmt)
    log.info("chosen: dim %d (validation %s %.4f); the fourth-root rule gives %d. Use: --set model.dim=%d%s",
             chosen["dim"], res["metric"], chosen["valid_metric"], res["fourth_root"], chosen["dim"],
             "" if chosen.get("weight_decay") is None else
             f" --set train.weight_decay_user={chosen['weight_decay']:g} --set train.weight_decay_movie={chosen['weight_decay']:g}")
    log.info("results: %s; plot: %s", res["results"], res["plot"])
    if write_path:
        p = write_choice(cfg, chosen, write_path, click.get_current_context().params.get("config_path"))
        log.info("wrote %s", p)


@main.command(context_settings=CONTEXT)
@click.option("--to", "target", type=click.Choice(["projector", "parquet", "npy", "csv", "faiss"]),
              help="Write the embeddings in this form into the -o folder.")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Folder for --to.")
@click.option("--sample", type=click.IntRange(1), help="Projector: at most this many movies (random, seeded).")
@click.option("--base-url", help="Projector: the URL the -o folder will be served from, so projector_config.json "
                                 "holds absolute paths for projector.tensorflow.org/?config=URL.")
@click.option("--sample-users", "--users", "n_users", type=click.IntRange(0), default=0, show_default=True,
              help="Projector: also this many users (sampled); --users is the old name (on recommend, --users is "
                   "a file of ids).")
@click.option("--topk-all", "topk_path", type=click.Path(dir_okay=False),
              help="Top-K for every user into this .parquet or .csv file.")
@click.option("-k", "k", type=click.IntRange(1), help="K for --topk-all (recommend.k).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="A 2-D map of the movies as PNG.")
@click.option("--plot-method", type=click.Choice(["pca", "tsne", "umap"]), default="pca", show_default=True,
              help="Projection for --plot (tsne needs scikit-learn, umap needs umap-learn).")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@RUN
@common
def export(cfg: Config, target, output, sample, base_url, n_users, topk_path, k, plot_path, plot_method, overwrite, run_dir):
    """Export a trained run: projector files, tables, the index, every user's top-K, a 2-D map.

    \b
    Examples:
      embedrec export --to projector -o out/projector --sample-users 500
      embedrec export --to parquet -o out/embeddings
      embedrec export --topk-all out/top10.parquet -k 10
      embedrec export --plot out/movies.png
    """
    from embedrec.errors import UsageError
    from embedrec.export import export_dir, plot_map, topk_all

    if not (target or topk_path or plot_path):
        raise UsageError("nothing to export: give --to FORMAT -o DIR, --topk-all FILE, or --plot FILE.png")
    if target and not output:
        raise UsageError(f"--to {target} needs -o/--output DIR")
    from embedrec.distributed import active

    if active() and (target or plot_path):
        raise UsageError("under torchrun, export runs --topk-all only (each rank scores its users); run --to and "
                         "--plot in one process")
    from embedrec.serve.recommender import Recommender

    rec = Recommender.open(run_dir or cfg.run.dir, cfg.recommend)
    results = []
    if target:
        results.append(export_dir(rec, target, output, overwrite, sample, n_users, base_url=base_url))
    if topk_path:
        from tqdm import tqdm

        from embedrec.distributed import rank_world, secondary, shard_range

        total = shard_range(rec.P.shape[0], *rank_world(), align=cfg.recommend.batch_size)
        with tqdm(total=total[1] - total[0], desc="top-k", unit="user",
                  disable=not progress_enabled() or secondary()) as bar:
            results.append(topk_all(rec, topk_path, k or cfg.recommend.k, overwrite, cfg.recommend.batch_size,
                                    bar.update, device=cfg.train.device))
        if secondary():  # under torchrun, rank 0 alone reports
            return
    if plot_path:
        results.append(plot_map(rec, plot_path, plot_method, overwrite=overwrite))
    for r in results:
        log.info("exported: %s", ", ".join(f"{a}={b}" for a, b in r.items()))
    click.echo(json.dumps(results, indent=2))
