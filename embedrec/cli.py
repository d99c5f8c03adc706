"""The click layer: parse options, load the config, call one library function, format the result.

Errors from the library (:class:`EmbedrecError`) become one line on stderr and an exit code here, in one place.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path

import click

from embedrec import __version__
from embedrec.errors import EmbedrecError

log = logging.getLogger("embedrec")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _State:
    traceback = False
    quiet = False


def _setup_logging(quiet: bool, verbose: bool) -> None:
    log.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def progress_enabled() -> bool:
    return not _State.quiet and sys.stderr.isatty()


class Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EmbedrecError as e:
            if _State.traceback:
                raise
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            if _State.traceback:
                raise
            click.echo("interrupted: nothing half-written was left behind", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.stderr.close()
            sys.exit(0)


def common(fn):
    """-c/--config, --set, -q/--quiet, -v/--verbose, --traceback for every subcommand."""

    @click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), default=None,
                  help="YAML config (default: the built-in defaults, as in configs/default.yaml).")
    @click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
                  help="Override one config value; repeatable. Example: --set train.lr=0.01")
    @click.option("-q", "--quiet", is_flag=True, help="No progress bars or info messages on stderr.")
    @click.option("-v", "--verbose", is_flag=True, help="More detail on stderr; tracebacks on errors.")
    @click.option("--traceback", is_flag=True, help="Show the Python traceback on errors.")
    @functools.wraps(fn)
    def wrapper(config_path, overrides, quiet, verbose, traceback, **kw):
        _State.traceback = traceback or verbose
        _State.quiet = quiet
        _setup_logging(quiet, verbose)
        from embedrec.config import load_config

        cfg = load_config(config_path, overrides)
        return fn(cfg, **kw)

    return wrapper


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="embedrec")
def main():
    """Embedding-based movie recommendation: ingest MovieLens (or your own ratings), train a PyTorch
    matrix-factorization model, pick the embedding size, and serve top-K movies from a FAISS index.

    \b
    Quick start:
      embedrec ingest ml-100k
      embedrec train
      embedrec recommend --user 196
    """


# ----------------------------------------------------------------------------------------------- config

@main.command("config", context_settings=CONTEXT)
@click.argument("action", type=click.Choice(["show"]), default="show")
@common
def config_cmd(cfg, action):
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
def ingest(cfg, source, output, overwrite, fmt):
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
    from embedrec.ingest import format_summary
    from embedrec.ingest import ingest as run_ingest

    if source:
        cfg.data.source = source
    if output:
        cfg.data.prepared = output
    summary = run_ingest(cfg.data, cfg.split, output=cfg.data.prepared, overwrite=overwrite,
                         progress=progress_enabled(), full_config=cfg.to_dict())
    if not _State.quiet:
        click.echo(format_summary(summary), err=True)
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2))


def _not_built(name: str, issue: int):
    @main.command(name, context_settings=CONTEXT, add_help_option=True,
                  help=f"Not built yet (issue #{issue}): exits with code 2.")
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def cmd(args):
        click.echo(f"error: 'embedrec {name}' is not built yet (issue #{issue}); nothing was done", err=True)
        sys.exit(2)

    return cmd


if __name__ == "__main__":  # pragma: no cover
    main()

for _name, _issue in (("train", 3), ("evaluate", 3), ("tune-dims", 5), ("recommend", 4), ("predict", 4),
                      ("export", 7)):
    _not_built(_name, _issue)
