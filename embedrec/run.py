"""The run directory: the one module that owns what ``train`` leaves behind and later commands read.

Layout::

    RUN/checkpoint.pt          training state for --resume (torch, loaded with weights_only=True)
    RUN/metrics.jsonl          one JSON line per epoch (the training log)
    RUN/current -> artifacts-<version>/   swapped atomically when a new model is ready
    RUN/artifacts-<version>/
        manifest.json          versions, dataset fingerprint, model args, file checksums, index metadata
        config.yaml            the resolved config of the run
        state_dict.pt          the model's state_dict
        user_factors.npy movie_factors.npy user_bias.npy movie_bias.npy
        users.parquet movies.parquet    id maps (external id <-> index) with titles, years, genres
        seen_indptr.npy seen_indices.npy  each user's training movies (CSR), excluded from recommendations
        movies_ip.faiss movies_cos.faiss  the indexes (see index.py)
        metrics.json metrics.jsonl

A reader resolves ``current`` once and reads everything from that one folder, so a ``recommend`` running while
``train`` rewrites the run sees the old artifacts or the new ones, never a mix. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedrec import __version__
from embedrec.errors import ArtifactError
from embedrec.fsutil import read_json, write_json

RUN_FORMAT = 1
NPY = ("user_factors", "movie_factors", "user_bias", "movie_bias", "seen_indptr", "seen_indices", "popularity")


def sha256_array(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _swap_current(run_dir: Path, name: str) -> None:
    link = run_dir / "current"
    tmp = run_dir / f".current.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(name, tmp)
    os.replace(tmp, link)


def _prune(run_dir: Path, keep: set[str]) -> None:
    """Remove older artifact folders, keeping the new one and the one before (a reader may still hold it)."""
    folders = sorted((p for p in run_dir.glob("artifacts-*") if p.is_dir()), key=lambda p: p.name)
    for p in folders[:-2]:
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
    for p in run_dir.glob(".artifacts-*.tmp"):
        shutil.rmtree(p, ignore_errors=True)


def publish(run_dir: str | Path, write) -> Path:
    """Call ``write(tmp_folder)`` to fill a new artifacts folder, then make it ``current`` atomically."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    version = time.strftime("%Y%m%dT%H%M%S") + f"-{time.time_ns() % 1_000_000_000:09d}"
    tmp = run_dir / f".artifacts-{version}.tmp"
    tmp.mkdir()
    try:
        write(tmp)
        final = run_dir / f"artifacts-{version}"
        os.replace(tmp, final)
        _swap_current(run_dir, final.name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prev = {p.name for p in [final]}
    _prune(run_dir, prev)
    return final


@dataclass
class Run:
    """A trained run, loaded from plain files (numpy, parquet, JSON, FAISS)."""

    path: Path
    manifest: dict

    def array(self, name: str, mmap: bool = False) -> np.ndarray | None:
        p = self.path / f"{name}.npy"
        if not p.exists():
            if name in ("user_bias", "movie_bias"):
                return None
            raise ArtifactError(f"run artifact '{p}' is missing; rerun 'embedrec train'")
        try:
            return np.load(p, allow_pickle=False, mmap_mode="r" if mmap else None)
        except (ValueError, OSError) as e:
            raise ArtifactError(f"run artifact '{p}' is corrupt ({e}); rerun 'embedrec train'") from None

    @property
    def explicit(self) -> bool:
        return self.manifest["model"]["objective"] == "explicit"

    def table(self, name: str):
        import pandas as pd

        p = self.path / f"{name}.parquet"
        try:
            return pd.read_parquet(p)
        except FileNotFoundError:
            raise ArtifactError(f"run artifact '{p}' is missing; rerun 'embedrec train'") from None
        except Exception as e:
            raise ArtifactError(f"run artifact '{p}' cannot be read ({str(e).splitlines()[0]}); "
                                "rerun 'embedrec train'") from None


def load_run(run_dir: str | Path) -> Run:
    run_dir = Path(run_dir)
    link = run_dir / "current"
    if not link.exists():
        hint = " (training was interrupted: 'embedrec train --resume')" if (run_dir / "checkpoint.pt").exists() else ""
        raise ArtifactError(f"no trained model in '{run_dir}'{hint}; run 'embedrec train' first or set run.dir")
    path = run_dir / os.readlink(link) if link.is_symlink() else link
    manifest = read_json(path / "manifest.json", "run manifest")
    if manifest.get("format_version") != RUN_FORMAT:
        raise ArtifactError(f"run '{path}' was written by an incompatible embedrec; rerun 'embedrec train'")
    return Run(path.resolve(), manifest)


def save_artifacts(tmp: Path, f: dict, ds, state_dict_bytes: bytes, manifest_extra: dict, config_yaml: str,
                   metrics: dict, index_cfg, history_path: Path | None) -> dict:
    """Write every artifact of a trained model into ``tmp`` and return the manifest."""
    from embedrec.evaluate import csr
    from embedrec.index import build_indexes

    tr = ds.splits["train"]
    indptr, indices = csr(tr.user, tr.movie, ds.n_users)
    arrays = {
        "user_factors": f["user_factors"].astype(np.float32),
        "movie_factors": f["movie_factors"].astype(np.float32),
        "user_bias": f["user_bias"],
        "movie_bias": f["movie_bias"],
        "seen_indptr": indptr,
        "seen_indices": indices,
        "popularity": np.bincount(tr.movie, minlength=ds.n_movies).astype(np.int64),
    }
    arrays.update(f.get("feature_tables") or {})
    checksums = {}
    for name, a in arrays.items():
        if a is None:
            continue
        np.save(tmp / f"{name}.npy", np.ascontiguousarray(a), allow_pickle=False)
        checksums[f"{name}.npy"] = sha256_array(a)
    (tmp / "state_dict.pt").write_bytes(state_dict_bytes)
    ds.users.to_parquet(tmp / "users.parquet", index=False)
    ds.movies.to_parquet(tmp / "movies.parquet", index=False)
    (tmp / "config.yaml").write_text(config_yaml, encoding="utf-8")
    write_json(tmp / "metrics.json", metrics)
    if history_path is not None and history_path.exists():
        shutil.copyfile(history_path, tmp / "metrics.jsonl")
    emb_hash = hashlib.sha256((checksums["movie_factors.npy"] + checksums.get("movie_bias.npy", "")).encode()).hexdigest()
    index_meta = build_indexes(tmp, f, index_cfg, emb_hash)
    manifest = {
        "format_version": RUN_FORMAT,
        "embedrec_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dataset": {"path": str(ds.path), "name": ds.manifest.get("name"),
                    "fingerprint": hashlib.sha256(repr(sorted(ds.manifest.get("inputs", {}).items())).encode()
                                                  + str(ds.manifest.get("counts")).encode()).hexdigest(),
                    "rating_scale": ds.manifest.get("rating_scale"), "counts": ds.manifest.get("counts")},
        **manifest_extra,
        "global_mean": f["global_mean"],
        "n_users": ds.n_users,
        "n_movies": ds.n_movies,
        "files": checksums,
        "embeddings_sha256": emb_hash,
        "index": index_meta,
    }
    write_json(tmp / "manifest.json", manifest)
    return manifest


def rebuild_index(run_dir: str | Path, index_cfg) -> dict:
    """Build the indexes again from a run's embeddings (e.g. with other index settings)."""
    run = load_run(run_dir)
    f = {"movie_factors": run.array("movie_factors"), "movie_bias": run.array("movie_bias"),
         "user_factors": run.array("user_factors")}

    def write(tmp: Path) -> None:
        for p in run.path.iterdir():
            if p.suffix != ".faiss" and p.name != "manifest.json":
                shutil.copy2(p, tmp / p.name)
        from embedrec.index import build_indexes

        meta = build_indexes(tmp, f, index_cfg, run.manifest["embeddings_sha256"])
        write_json(tmp / "manifest.json", {**run.manifest, "index": meta})

    publish(run_dir, write)
    return load_run(run_dir).manifest["index"]
