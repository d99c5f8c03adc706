"""What to do about a damaged run, in the words every refusal of one ends with: ``run_fix`` (train that run again,
with the -c/--set it was trained with; an updated model's updates kept by run_updates.updates_fix), ``index_fix``
(its index files alone: ``index rebuild`` with the settings it had, ``index_settings``; ``files_fix`` picks
between the two by the files named), and, for a model folder
copied out of its run, copy it again from that run. Naming the run folder, never the config's run.dir (another
run). numpy-free: serving imports this.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from embedrec.errors import command, from_here, marked, sh_join, sh_quote
from embedrec.run_checks import bare_model_folder
from embedrec.run_layout import run_of
from embedrec.run_updates import updates_fix


def run_fix(path) -> str:
    """How to repair a damaged run, naming its run folder (``path``: the run folder or a model folder in it): a
    bare "rerun 'embedrec train'" trains the config's run.dir, another run than the damaged one (a first-hour
    review: it retrained runs/ml-100k over a damaged runs/c1)."""
    p = Path(path)
    with contextlib.suppress(OSError):
        p = p.resolve()  # RUN/current is the model folder it names (a review: '--run runs/b/artifacts-...')
    bare = bare_model_folder(p)
    if bare is not None:  # train cannot write into it: copy it again from its run
        return _copy_again(p, bare)
    cmd = command(f"embedrec train --run {sh_quote(str(run_of(p)))}")
    return marked(f"rerun {cmd} with the -c/--set it was trained with", "train again and save "
                  "(er.train(ds, cfg).save(run_dir))") + updates_fix(p)


def index_fix(path, index: dict | None) -> str:
    """How to repair a run whose index files alone are missing or damaged (every other file whole): build them
    again from its embeddings, ``index rebuild`` on its run folder with the index settings it has (``index``: its
    manifest's entry), where a first-hour review was told to train again for a rebuild of 0.01 s."""
    p = Path(path)
    with contextlib.suppress(OSError):
        p = p.resolve()
    bare = bare_model_folder(p)
    if bare is not None:
        return _copy_again(p, bare)
    run = run_of(p)
    settings = index_settings(index or {})
    cli = sh_join(["embedrec", "index", "rebuild", "--run", str(run),
                      *(a for k, v in settings.items() for a in ("--set", f"index.{k}={v}"))])
    updated = ", ".join(f"'index.{k}': {v!r}" for k, v in settings.items())
    return marked(f"build it again from the run's embeddings: {command(cli)}",
                  f"build it again from the run's embeddings: er.rebuild_index({str(run)!r}, "
                  f"cfg.updated({{{updated}}}))")


def files_fix(path, names, index: dict | None) -> str:
    """How to repair a run whose files ``names`` are missing or damaged (``index``: its manifest's entry): where
    they are FAISS index files alone, :func:`index_fix` (build them again), else :func:`run_fix`. The one rule of
    verify and of the writers that carry a run's files over (a red team: update-users told a run whose index alone
    was damaged to train again, where verify said to rebuild it)."""
    names = list(names)
    if names and all(str(n).endswith(".faiss") for n in names):
        return index_fix(path, index)
    return run_fix(path)


def index_settings(index: dict) -> dict:
    """The index.* settings that build the index a run's manifest records (``index``: its entry) again: its kind
    and the build settings FAISS was given other than their defaults (HNSW's M and efConstruction, IVF's nlist); the
    search breadth is raised again at build until the recall target is met."""
    from embedrec.config import IndexConfig

    kind = index.get("kind")
    out: dict = {"kind": kind} if kind in ("flat", "hnsw", "ivf", "ivf_sq8") else {}
    params = index.get("params") if isinstance(index.get("params"), dict) else {}
    for key, name in (("M", "hnsw_m"), ("efConstruction", "ef_construction"), ("nlist", "nlist")):
        value = params.get(key)  # where it is not index.*'s default (nlist's, null, is sized by the catalogue)
        if isinstance(value, int) and not isinstance(value, bool) and value != getattr(IndexConfig, name):
            out[name] = value
    return out


def _copy_again(folder: Path, manifest: dict) -> str:
    """The advice for a damaged model folder copied out of its run: copy it again from that run (as its manifest
    records it), or train that run again; nothing is written into the copy itself."""
    own = manifest.get("model_folder") if isinstance(manifest.get("model_folder"), dict) else {}
    run = own.get("run") if isinstance(own.get("run"), str) else None
    shown = sh_quote(str(from_here(folder)))
    if run is None:
        return f"copy it again from the run it came from (cp -rL RUN/current {shown}), or train that run again"
    return (f"copy it again from the run it came from (cp -rL {sh_quote(run + '/current')} {shown}, once that "
            "run is whole: embedrec verify " + sh_quote(run) + "), or train that run again")
