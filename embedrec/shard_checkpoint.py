"""torchrun's checkpoints: after each epoch every rank writes its own rows into full-size ``.npy`` tables, and
rank 0 publishes the folder by a rename and the pointer file (``POINTER``) beside it. Any number of ranks resumes
from one (each reads its own rows), and from a one-process ``checkpoint.pt`` too, whichever is newer."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from embedrec.run_layout import DIST_CHECKPOINT, DIST_TABLES, training_files
from embedrec.training.checkpoints import CHECKPOINT, DIST_POINTER
from embedrec.training.checkpoints import load_checkpoint as load_plain

if TYPE_CHECKING:
    from embedrec.dist_data import Shard
    from embedrec.distributed import Group

log = logging.getLogger("embedrec")

POINTER = DIST_POINTER  # names the newest complete checkpoint folder beside it (training.checkpoints: no torch there)


class ShardCheckpoint:
    """A loop callback: after every epoch, each rank writes its rows into the checkpoint's full-size .npy tables
    (one file per table, each row written once, by its owner); rank 0 then publishes it by renaming the folder
    and rewriting POINTER. Any number of ranks can resume from it (each reads its own rows)."""

    NAMES = tuple(n.removesuffix(".npy") for n in DIST_TABLES)  # the tables, as run_layout names their files

    def __init__(self, g: Group, folder, shard: Shard, fingerprint: str, config: dict):
        self.g, self.folder, self.shard = g, folder, shard
        self.fingerprint, self.config = fingerprint, config

    def record(self, state, row: dict) -> None:
        import shutil

        from numpy.lib.format import open_memmap

        from embedrec.fsutil.files import atomic_write_text

        name = f"{DIST_CHECKPOINT}{state.epoch + 1:05d}"
        tmp = self.folder / f".{name}.tmp"
        d = state.model.dim
        shapes = {"user": self.shard.n_users, "movie": self.shard.n_movies}
        if self.g.leader:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for n in self.NAMES:
                open_memmap(tmp / f"{n}.npy", mode="w+", dtype=np.float32, shape=(shapes[n.split("_")[-1]], d))
        self.g.barrier()
        best = state.best_state or state.model.state_dict()
        for n in self.NAMES:
            side = n.split("_")[-1]
            lo, hi = self.shard.u_range(self.g.rank) if side == "user" else self.shard.m_range(self.g.rank)
            src = (best if n.startswith("best") else state.model.state_dict())[f"{side}.weight"]
            try:
                mm = open_memmap(tmp / f"{n}.npy", mode="r+")
            except FileNotFoundError:  # rank 0 made it: not here, another node's disk (a review: 'check that path')
                from embedrec.errors import ArtifactError

                raise ArtifactError(f"'{tmp / f'{n}.npy'}', which rank 0 has just made, is not there for rank "
                                    f"{self.g.rank}: with ranks on several machines, run.dir (here {self.folder}) "
                                    "must be on a filesystem every node mounts, at the same path") from None
            mm[lo:hi] = src.detach().cpu().numpy()
            mm.flush()
            del mm
        self.g.barrier()
        if self.g.leader:
            import json

            final = self.folder / name
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            meta = {"fingerprint": self.fingerprint, "config": self.config, "folder": name, "epoch": state.epoch,
                    "history": state.history, "best": state.best, "best_epoch": state.best_epoch, "bad": state.bad,
                    "stopped": state.stop, "has_best": state.best_state is not None, "world": self.g.world}
            atomic_write_text(self.folder / POINTER, json.dumps(meta))
            for old in self.folder.glob(f"{DIST_CHECKPOINT}*"):
                if old.name != name:
                    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(g: Group, folder, shard: Shard) -> dict | None:
    """The newest checkpoint in ``folder`` (sharded POINTER, or a one-process checkpoint.pt) as loop.LoopState
    resumes from it, holding this rank's rows only; None when there is none."""
    from embedrec.errors import ArtifactError, first_line
    from embedrec.fsutil.files import loads_json

    pointer, plain = folder / POINTER, folder / CHECKPOINT
    if not pointer.exists() and not plain.exists():
        return None
    (ulo, uhi), (mlo, mhi) = shard.u_range(g.rank), shard.m_range(g.rank)
    if plain.exists() and (not pointer.exists() or plain.stat().st_mtime > pointer.stat().st_mtime):
        ck = load_plain(plain)
        cut = {"user.weight": (ulo, uhi), "movie.weight": (mlo, mhi)}

        def rows(sd):
            # torch tensors, or numpy arrays from the checkpoint of a one-process fit of als.Tables
            return None if sd is None else {k: torch.tensor(np.asarray(sd[k][a:b])) for k, (a, b) in cut.items()}

        return {**ck, "model": rows(ck["model"]), "best_state": rows(ck.get("best_state")), "optimizer": {}}
    try:
        meta = loads_json(pointer.read_text(encoding="utf-8"))
        tables = {n: np.load(folder / meta["folder"] / f"{n}.npy", mmap_mode="r") for n in ShardCheckpoint.NAMES}
    except (OSError, ValueError, KeyError) as e:
        raise ArtifactError(f"checkpoint '{pointer}' cannot be read ({first_line(e)}); train again without "
                            "resuming") from None

    def part(prefix: str) -> dict:
        return {"user.weight": torch.from_numpy(np.array(tables[prefix + "user"][ulo:uhi])),
                "movie.weight": torch.from_numpy(np.array(tables[prefix + "movie"][mlo:mhi]))}

    return {**meta, "model": part(""), "best_state": part("best_") if meta.get("has_best") else None,
            "optimizer": {}}


def has_checkpoint(run_dir) -> bool:
    """Whether ``run_dir`` (or a candidate or refit folder in it) holds a sharded checkpoint newer than any
    one-process checkpoint beside it: ``train --resume`` then continues it on this process's ranks."""
    for pointer in training_files(run_dir, POINTER):
        plain = pointer.parent / CHECKPOINT
        if pointer.exists() and (not plain.exists() or plain.stat().st_mtime <= pointer.stat().st_mtime):
            return True
    return False


def clear(folder: Path) -> None:
    """Remove the checkpoint of ``folder`` (a selection's candidate cleared to fit again), sharded or not."""
    (folder / POINTER).unlink(missing_ok=True)
    (folder / CHECKPOINT).unlink(missing_ok=True)


def in_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a checkpoint, sharded or a one-process one."""
    return (folder / POINTER).exists() or (folder / CHECKPOINT).exists()
