"""embedrec index rebuild."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from embedrec.cli.app import CONTEXT, Group, common, main, progress_enabled, unless_published, wrote
from embedrec.cli.options import RUN, report

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


@main.group(cls=Group, context_settings=CONTEXT)
def index():
    """Manage a run's FAISS index (its options, -c and --set go after the subcommand).

    \b
    Example:
      embedrec index rebuild --set index.kind=hnsw --set index.ef_search=64
    """


@index.command("rebuild", context_settings=CONTEXT)
@RUN
@common
def index_rebuild(cfg: Config, run_dir):
    """Rebuild the index of a trained run with the current index.* settings.

    \b
    Example:
      embedrec index rebuild --set index.kind=hnsw --set index.ef_search=64
    """
    from embedrec.api import rebuild_index

    meta = unless_published(run_dir or cfg.run.dir, "the rebuilt index",
                            lambda: rebuild_index(run_dir or None, cfg, progress=progress_enabled()))
    if meta is None:  # stopped after it was published: said
        return
    wrote(run_dir or cfg.run.dir)  # published: a report that fails says so, not to rebuild again
    report(json.dumps(meta, indent=2))
