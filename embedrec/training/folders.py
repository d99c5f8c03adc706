"""The folders ``train`` writes in a run folder, and what it may clear there: its own files, never a user's.

Top level: a selection's candidates (``als-reg-0.01``, ...: ``CANDIDATE_NAME``), the dimensions' selections
(``als-dim-<d>``: ``DIM_FOLDER``), the refit (``refit``, its earlier stages ``refit/path-<i>``). A fresh run
clears what an earlier run's training wrote there (checkpoints, logs, warm-start keys, TensorBoard's events,
torchrun's tables: ``TRAINING_FILE``, ``EVENTS``, ``DIST_TABLES``), so that a resume never takes another run's
checkpoint for its own and TensorBoard shows one run; anything else is kept, and said. A link where training
writes is removed on a fresh run (its files would land where it points) and refused on a resume; a file where a
folder goes is refused before any fit (:func:`check_folders`). One process and torchrun's ranks alike.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from embedrec.errors import ArtifactError, sh_quote
from embedrec.run_layout import CANDIDATE_NAME, DIST_FOLDER, DIST_TABLES, PARKED, REFIT, WRITER_LOCK
from embedrec.run_layout import DIM_NAME as DIM_FOLDER
from embedrec.run_layout import STAGE_NAME as PATH_STAGE
from embedrec.training.checkpoints import CHECKPOINT, DIST_POINTER, LOG, TENSORBOARD, WARM

log = logging.getLogger("embedrec")

# the refit's folder in a run (its earlier stages in refit/path-<i>, refit.refit_folder), choose_dim's folders
# (no other name is ever cleared) and the names Selection.folder gives (als-reg-0.01, als-recency-2,
# als-reg-0.02-a0-0.1066: what a file must not hold before a fit; a user's als-notes.txt is not one, a review):
# the run's layout, named in run_layout.py and imported above (its REFIT, STAGE_NAME, DIM_NAME, CANDIDATE_NAME)

# what training writes in a dimension's folder and its candidates' (fit, loop, shard_als): checkpoints, the
# torchrun pointer, the epoch log, the warm-start key, their temporaries (fsutil's '.<name>.XXXXXXXX');
# TensorBoard's event files; torchrun's checkpoint folders and their tables (run_layout's DIST_FOLDER, DIST_TABLES)
_NAMES = "|".join(map(re.escape, (CHECKPOINT, DIST_POINTER, LOG, WARM)))
TRAINING_FILE = re.compile(rf"({_NAMES})|\.({_NAMES})\.[a-z0-9_]{{8}}")
EVENTS = re.compile(r"events\.out\.tfevents\..+")


def clear_run_root(run_dir) -> None:
    """A fresh run, whatever its trainer, clears what an earlier run's training left at the top of the run
    folder: its checkpoint (``checkpoint.pt``, torchrun's pointer and sharded checkpoints), its epoch log and
    TensorBoard events, and every selection candidate's folder (``als-reg-0.01``, ...) as :func:`clear_folders`
    does; the published models (``current``, ``artifacts-*``) stay. A resume then finds this run's checkpoints
    or none (a review: a fresh bpr run left an earlier als run's candidates, and a ``--resume`` with the als
    config resumed them and published over the bpr model; the other way round, a bpr checkpoint outlived an als
    run)."""
    root = Path(run_dir)
    if not root.is_dir():
        return
    # the names Selection.folder gives, not any als-*: a user's als-backup/ keeps its copied checkpoint (a review)
    clear_folders([p for p in sorted(root.iterdir()) if CANDIDATE_NAME.fullmatch(p.name) and (p.is_dir() or p.is_symlink())])
    _clear_training_folder(root, candidates=False)


def clear_dim_folders(run_dir) -> None:
    """A fresh run (not a resume) clears the als-dim-<d> folders an earlier run left: a resume of this run must
    never take another run's checkpoint there for its own. Only what training writes goes, in the folders
    training makes (the candidates', TensorBoard's, torchrun's checkpoints'), and the folders left empty; a
    folder holding anything else is kept with it, and said (a red team: every als-dim-* folder was removed
    whole, a user's files in one and a folder of the user's own so named). A link where training writes (a
    dimension's or a candidate's folder, ...) is removed, never followed: its files would land where it points."""
    clear_folders([top for top in sorted(Path(run_dir).glob("als-dim-*")) if DIM_FOLDER.fullmatch(top.name)],
                  candidates=True)


def check_dim_folders(run_dir, dims, resume: bool = False) -> None:
    """Refuse, before any fitting (and any clearing), a file where a dimension's selection will write its folder
    or a candidate's (a review: a file named als-dim-16 failed the run after the whole first selection, naming
    another path); on a resume, a link there too (a fresh run removes links: :func:`clear_dim_folders`)."""
    for d in dims:
        top = Path(run_dir) / f"als-dim-{d}"
        if resume and top.is_symlink():
            check_folders([top], resume)
        if top.is_symlink() and not resume:
            continue  # removed by the fresh run's clearing, never looked into (a review: its target was)
        blocking = [top] if top.exists() and not top.is_dir() else [
            p for p in (top.iterdir() if top.is_dir() else ()) if CANDIDATE_NAME.fullmatch(p.name) and not p.is_dir()
            and not (p.is_symlink() and not resume)]
        if blocking:
            if blocking[0].is_symlink():
                check_folders(blocking, resume)
            raise ArtifactError(f"'{blocking[0]}' is a file where train writes the selection at model.dim {d} (a "
                                "folder of checkpoints); move it away, or use another run.dir")


def _clear_training_folder(folder: Path, candidates: bool) -> int:
    """Remove what training wrote in ``folder`` (and with ``candidates`` in its candidates' folders), then the
    folders it made that are left empty. Returns how many files went."""
    removed = 0
    for entry in os.scandir(folder):
        path = Path(entry.path)
        ours_dir = entry.name == TENSORBOARD or DIST_FOLDER.fullmatch(entry.name) or (
            candidates and CANDIDATE_NAME.fullmatch(entry.name))
        if entry.is_symlink():
            if ours_dir or TRAINING_FILE.fullmatch(entry.name):
                path.unlink()
            continue
        if entry.is_file() and TRAINING_FILE.fullmatch(entry.name):
            path.unlink()
            removed += 1
        elif entry.is_dir() and ours_dir:
            if entry.name == TENSORBOARD or DIST_FOLDER.fullmatch(entry.name):
                names = EVENTS.fullmatch if entry.name == TENSORBOARD else DIST_TABLES.__contains__
                for inner in os.scandir(path):
                    if inner.is_file(follow_symlinks=False) and names(inner.name):
                        os.unlink(inner.path)
                        removed += 1
            else:
                removed += _clear_training_folder(path, candidates=False)
            with contextlib.suppress(OSError):  # not empty: it holds what training did not write
                path.rmdir()
    return removed


def _kept_warning(top: Path, removed: int, skip=frozenset()) -> None:
    """Say that ``top`` was kept: what is left in it (files, links, folders holding nothing else), but for what is
    below ``skip`` (folders said on their own) and what marks the run folder itself (a single candidate's folder is
    the run's: its writer lock, its models, tune-dims' folder are embedrec's; a red team: every train of a single
    reg under torchrun said "kept 'runs/x': it holds files train did not write (.lock)")."""
    from embedrec.run_checks import is_run_entry

    if is_run_entry(top / WRITER_LOCK):  # the run folder (a candidate's folder holds no lock)
        with contextlib.suppress(OSError):
            skip = set(skip) | {p for p in top.iterdir() if is_run_entry(p)}
    left = sorted(str(p.relative_to(top)) + ("/" if p.is_dir() and not p.is_symlink() else "")
                  for p in top.rglob("*") if (not p.is_dir() or p.is_symlink() or not any(p.iterdir()))
                  and not any(s == p or s in p.parents for s in skip))
    if not left:
        return
    log.warning("kept '%s': it holds files train did not write (%s%s)%s", top, ", ".join(left[:3]),
                ", ..." if len(left) > 3 else "", "; train's files in it were removed" if removed else "")


def clear_folders(folders, candidates: bool = False) -> None:
    """A fresh selection clears what an earlier run's training left in its candidates' folders (a red team: a
    link at a candidate's folder was followed, the user's files it led to overwritten; a candidate's
    TensorBoard kept the earlier run's events beside the new ones). A link there is removed, never followed; a
    folder left empty goes; one that holds anything else is kept with it, and said."""
    for folder in map(Path, folders):
        removed = _clear_folder(folder, candidates)
        if folder.exists() and not folder.is_symlink():  # what is left: files, links, folders of nothing else
            _kept_warning(folder, removed)


def _clear_folder(folder: Path, candidates: bool = False) -> int:
    """One folder where training writes: a link there removed (never followed); else training's files in it
    removed (with ``candidates``, in its candidates' folders too) and the folder if it is then empty. Returns
    how many files went."""
    if folder.is_symlink():
        folder.unlink()
        return 0
    if not folder.is_dir():
        return 0
    removed = _clear_training_folder(folder, candidates=candidates)
    with contextlib.suppress(OSError):
        folder.rmdir()
    return removed


def clear_refit(run_dir) -> None:
    """A fresh run clears the refit's folder as :func:`clear_folders` does, and its stages (refit/path-<i>), each
    kept stage said once (not again in the refit folder's own line)."""
    refit = Path(run_dir) / REFIT
    stages = [p for p in sorted(refit.iterdir()) if PATH_STAGE.fullmatch(p.name)] \
        if refit.is_dir() and not refit.is_symlink() else []
    clear_folders(stages)
    removed = _clear_folder(refit)
    if refit.exists() and not refit.is_symlink() and any(p not in stages for p in refit.iterdir()):
        _kept_warning(refit, removed, skip=set(stages))  # each kept stage said on its own line already


def training_bytes(run_dir) -> int:
    """The bytes of the files :func:`clear_training` would remove: training's own files (checkpoints, logs,
    TensorBoard events, torchrun's tables) in the run folder, its candidates', dimensions' and refit's folders;
    a user's file there is not counted (a review: a 2 GB file of the user's in als-dim-256 made 'auto' clear the
    31 MB of checkpoints); links are not followed."""
    def size(path: str) -> int:
        try:
            return os.lstat(path).st_size
        except OSError:
            return 0

    total = 0
    for folder in _training_folders(Path(run_dir)):
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if entry.is_symlink():
                    continue
                if entry.is_file() and TRAINING_FILE.fullmatch(entry.name):
                    total += size(entry.path)
                elif entry.is_dir() and (entry.name == TENSORBOARD or DIST_FOLDER.fullmatch(entry.name)):
                    names = EVENTS.fullmatch if entry.name == TENSORBOARD else DIST_TABLES.__contains__
                    total += sum(size(i.path) for i in os.scandir(entry.path)
                                 if i.is_file(follow_symlinks=False) and names(i.name))
    return total


def _training_folders(folder: Path, depth: int = 0):
    """``folder`` and the folders training makes in it, below it (candidates', the refit's and its stages, the other
    dimensions': three levels at most), links never followed: where :func:`training_bytes` counts and
    :func:`clear_temporaries` clears."""
    yield folder
    if depth >= 3:
        return
    subs: list[Path] = []
    with contextlib.suppress(OSError):
        subs = [Path(e.path) for e in os.scandir(folder) if not e.is_symlink() and e.is_dir() and (
            CANDIDATE_NAME.fullmatch(e.name) or e.name == REFIT or DIM_FOLDER.fullmatch(e.name)
            or PATH_STAGE.fullmatch(e.name))]
    for sub in subs:
        yield from _training_folders(sub, depth + 1)


TEMPORARY = re.compile(rf"\.({_NAMES})\.[a-z0-9_]{{8}}")  # a killed write's temporary (fsutil's '.<name>.XXXXXXXX')


def clear_temporaries(run_dir) -> int:
    """Remove the temporaries a killed write of a checkpoint, the epoch log or a warm-start key left (:data:`TEMPORARY`)
    in the run folder and the folders training makes in it (candidates', the refit's and its stages, the other
    dimensions'), keeping every checkpoint; links are neither followed nor removed. A published run needs none of
    them: ``publish`` calls it, a resume's publish too (a red team: `train --resume` left a killed write's
    `.checkpoint.pt.XXXXXXXX`, a whole checkpoint's size, for good). Returns how many went."""
    removed = 0
    for folder in _training_folders(Path(run_dir)):
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if not entry.is_symlink() and entry.is_file() and TEMPORARY.fullmatch(entry.name):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed += 1
    return removed


def clear_training(run_dir) -> None:
    """What a fresh run of any trainer clears before it fits (one process and both torchrun paths): the run
    folder's own checkpoint and candidates (:func:`clear_run_root`), the other dimensions' selections
    (:func:`clear_dim_folders`), the refit's folder (:func:`clear_refit`) and the side folder a killed train's
    train.als_dims parked tables in (training.dims.Parked; its writer gone, ``outputs.sweep_stale``)."""
    from embedrec.fsutil.outputs import sweep_stale

    clear_run_root(run_dir)
    clear_dim_folders(run_dir)
    clear_refit(run_dir)
    sweep_stale(Path(run_dir) / PARKED)


def clear_stale_path(run_dir: Path, n: int) -> None:
    """Before a refit of ``n`` stages: clear the ``refit/path-<i>`` folders it does not write (left by an earlier
    run whose path was longer), so the folder holds this refit's logs only. Only what training wrote goes (a red
    team: every refit/path-* folder was removed whole, a user's files in it and folders of other names); a link
    there is removed, never followed."""
    refit = Path(run_dir) / REFIT
    if refit.is_symlink():  # the refit writes there next: never through a link
        refit.unlink()
        return
    if not refit.is_dir():
        return
    clear_folders(stage for stage in sorted(refit.iterdir()) if PATH_STAGE.fullmatch(stage.name) and (
        int(stage.name[5:]) >= n - 1 or stage.is_symlink()))


_KEPT = {CHECKPOINT: "checkpoint", LOG: "epoch log", DIST_POINTER: "torchrun checkpoint's pointer",
         WARM: "warm-start key"}


def check_training_files(run_dir) -> None:
    """Refuse, before any fit, a folder where train keeps one of its files (``checkpoint.pt``, ``metrics.jsonl``,
    ...) in the run folder, a candidate's, the refit's or a dimension's candidates': a red team's resume said
    "nothing to resume: no checkpoint" for a folder named checkpoint.pt, and "cannot use '.metrics.jsonl.x7k2':
    Is a directory" (a temporary's name) for one named metrics.jsonl; a fresh run failed alike."""
    root = Path(run_dir)
    if not root.is_dir():
        return
    folders = [root]
    with contextlib.suppress(OSError):
        for top in sorted(root.iterdir()):
            if top.is_symlink() or not top.is_dir():
                continue
            if CANDIDATE_NAME.fullmatch(top.name) or top.name == REFIT:
                folders.append(top)
            elif DIM_FOLDER.fullmatch(top.name):
                folders += [p for p in sorted(top.iterdir()) if CANDIDATE_NAME.fullmatch(p.name)
                            and p.is_dir() and not p.is_symlink()]
    for folder in folders:
        for name, what in _KEPT.items():
            p = folder / name
            if p.is_dir() and not p.is_symlink():
                raise ArtifactError(f"'{p}' is a folder where train keeps its {what} (a file); remove it "
                                    f"(rm -r {sh_quote(str(p))}) or move it away, or use another run.dir")


def check_folders(folders, resume: bool) -> None:
    """Refuse, before any fit and before anything is cleared, what stands where training will write a folder (a
    red team: a file named refit failed the run after the whole selection, whose fresh start had already cleared
    the earlier run's checkpoints): a file at the folder or at its ``tensorboard`` (and, for the refit, at its
    stages refit/path-<i>), or on a resume a link there (a fresh run removes links first: :func:`clear_folders`)."""
    for folder in map(Path, folders):
        inner = [folder / TENSORBOARD]
        if folder.name == REFIT and folder.is_dir() and not folder.is_symlink():
            stages = [p for p in sorted(folder.iterdir()) if PATH_STAGE.fullmatch(p.name)]
            inner += [q for p in stages for q in (p, p / TENSORBOARD)]
        for q in (folder, *inner):
            if q.is_symlink():
                if resume:
                    raise ArtifactError(f"'{q}' is a link where train writes; train writes only in folders of its "
                                        "own: put the folder it points to there, or train again without «--resume|resume=True»")
                continue  # removed by the fresh run's clearing
            if q.exists() and not q.is_dir():
                raise ArtifactError(f"'{q}' is a file where train writes a folder of checkpoints; move it away, or "
                                    "use another run.dir")
            if q == folder and not q.exists():
                break  # nothing inside it yet
