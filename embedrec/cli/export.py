"""embedrec export."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from embedrec.cli.app import CONTEXT, common, log, main, progress_enabled, wrote
from embedrec.cli.options import RUN, PathParam, report, usage_error

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


@main.command(context_settings=CONTEXT)
@click.option("--to", "target", type=click.Choice(["projector", "parquet", "npy", "csv", "faiss", "torch"]),
              help="Write the embeddings in this form into the -o folder.")
@click.option("-o", "--output", type=PathParam(file_okay=False), help="Folder for --to.")
@click.option("--sample", type=click.IntRange(1), help="Projector: at most this many movies (random, seeded).")
@click.option("--base-url", help="Projector: the URL the -o folder will be served from, so projector_config.json "
                                 "holds absolute paths for projector.tensorflow.org/?config=URL.")
@click.option("--sample-users", "--users", "n_users", type=click.IntRange(0), default=0, show_default=True,
              help="Projector: also this many users (sampled); --users is the old name (on recommend, --users is "
                   "a file of ids).")
@click.option("--topk-all", "topk_path", type=PathParam(kind="file path"),
              help="Top-K for every user into this .parquet or .csv file, or a folder of Parquet parts (a name "
                   "without an extension).")
@click.option("-k", "k", type=click.IntRange(1), help="K for --topk-all (recommend.k).")
@click.option("--diversify", "diversify", type=float, metavar="LAMBDA",
              help="--topk-all's lists re-ranked for diversity, as recommend --diversify (1: the model's own).")
@click.option("--plot", "plot_path", type=PathParam(kind="file path (.png)"),
              help="A 2-D map of the movies, in the format its name ends in (.png, .svg, .pdf, .jpg, ...).")
@click.option("--plot-method", type=click.Choice(["pca", "tsne", "umap"]),
              help="Projection for --plot: pca (the default), tsne (needs scikit-learn) or umap (needs umap-learn).")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@RUN
@common
def export(cfg: Config, target, output, sample, base_url, n_users, topk_path, k, diversify, plot_path, plot_method,
           overwrite, run_dir):
    """Export a trained run: projector files, tables, the index, every user's top-K, a 2-D map.

    \b
    Examples:
      embedrec export --to projector -o out/projector --sample-users 500
      embedrec export --to parquet -o out/embeddings
      embedrec export --to torch -o out/model         # state_dict.pt of the PyTorch module
      embedrec export --topk-all out/top10.parquet -k 10   # a file; a missing folder is made (a note says so)
      embedrec export --plot movies.png
    """
    from embedrec.api import export_misapplied, export_run
    from embedrec.errors import UsageError, cli_terms

    # the library's rules (nothing to export, --to without -o: export_run's own errors); an option for an output
    # not asked for is said as click's option errors are
    why = export_misapplied(to=target, output=output, topk_all=topk_path, k=k, plot=plot_path,
                            plot_method=plot_method, sample=sample, sample_users=n_users, base_url=base_url,
                            diversify=diversify)
    if why is not None:
        usage_error(cli_terms(why))
    if output == "-" and target:  # a red team: a folder named '-' was made
        raise UsageError(f"-o -: --to {target} writes a folder of files, not to standard output; give a folder, "
                         f"e.g. -o out/{target}")
    results = export_run(cfg, run_dir or None, to=target, output=output, topk_all=topk_path, k=k, plot=plot_path,
                         plot_method=plot_method, overwrite=overwrite, sample=sample, sample_users=n_users,
                         base_url=base_url, progress=progress_enabled(), diversify=diversify)
    if results is None:  # under torchrun, rank 0 alone reports
        return
    for r in results:
        log.info("exported: %s", ", ".join(f"{a}={b}" for a, b in r.items()))
    wrote(*(r.get("output") or r.get("topk_all") or r.get("plot") for r in results))
    report(json.dumps(results, indent=2))
