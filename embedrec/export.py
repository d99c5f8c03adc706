"""``embedrec export``: a trained run's embeddings for other tools, every user's top-K, and a 2-D map.

Everything is written into a temporary folder (or file) and renamed into place; an existing target needs
``overwrite``. Reads only the run's plain artifacts (numpy, Parquet, FAISS), like ``recommend``.

The targets live beside it: ``export_projector`` (TensorBoard projector), ``export_tables`` (Parquet/NumPy/CSV,
FAISS, torch; the export marker), ``export_topk`` (``--topk-all``) and ``export_plot`` (``--plot``); this
module dispatches ``--to`` and re-exports their entry points.
"""

from __future__ import annotations

from pathlib import Path

from embedrec.errors import UsageError, marked
from embedrec.export_plot import plot_map, plot_target
from embedrec.export_projector import projector, write_empty_event_file
from embedrec.export_tables import (
    MARKER,
    faiss_files,
    feature_rows,
    is_export,
    opened_run,
    score_terms,
    tables,
    torch_state,
)
from embedrec.export_topk import topk_all, topk_range
from embedrec.fsutil.outputs import atomic_dir
from embedrec.serve.recommender import Recommender

__all__ = ["MARKER", "TARGETS", "export_dir", "faiss_files", "feature_rows", "is_export",
           "opened_run", "plot_map", "plot_target", "projector", "score_terms", "tables", "topk_all", "topk_range",
           "torch_state", "write_empty_event_file"]


TARGETS = ("projector", "parquet", "npy", "csv", "faiss", "torch")


def export_dir(rec: Recommender, target: str, out: str | Path, overwrite: bool = False, sample: int | None = None,
               users: int = 0, base_url: str | None = None) -> dict:
    rec = opened_run(rec, "export")
    if target not in TARGETS:
        raise UsageError(f"{marked(f'--to {target!r}', f'target={target!r}')}: expected one of {', '.join(TARGETS)}")
    with atomic_dir(out, overwrite=overwrite, ours=is_export, command="embedrec export",
                    fix="choose another -o folder") as tmp:
        if target == "projector":
            info = projector(rec, tmp, sample, users, base_url=base_url)
        elif target == "faiss":
            info = faiss_files(rec, tmp)
        elif target == "torch":
            info = torch_state(rec, tmp)
        else:
            info = tables(rec, tmp, target)
        from embedrec.fsutil.files import write_json
        from embedrec.fsutil.integrity import checksum_folder, seal

        # sealed as a manifest is (a red team: a flipped bit in it was said as a damaged movie_ids.npy, and
        # --overwrite then refused the folder)
        write_json(tmp / MARKER, seal({"kind": "embedrec-export", "to": target, "run": str(rec.run.path),
                                       "files": checksum_folder(tmp, skip=(MARKER,))}))
    return {"to": target, "output": str(out), **info}
