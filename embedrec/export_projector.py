"""``embedrec export --to projector``: TensorBoard Embedding Projector files (tensors, metadata, the plugin's
config and the standalone projector's JSON) and an empty event file, written without TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from embedrec.data.ids import py_id
from embedrec.output import tsv_cell
from embedrec.serve.recommender import Recommender


def _write_tensor_tsv(path: Path, x: np.ndarray) -> None:
    np.savetxt(path, x, delimiter="\t", fmt="%.6g", encoding="utf-8")


def _movie_meta(rec: Recommender) -> list[list]:
    pop = rec.run.array("popularity")
    cat = rec.catalogue
    return [[cat.movie_ids[i].item() if hasattr(cat.movie_ids[i], "item") else cat.movie_ids[i], cat.titles[i],
             cat.years[i], (cat.genres[i] or [""])[0] if cat.genres[i] else "", cat.genres[i] or [], int(pop[i])]
            for i in range(len(cat.titles))]


def _user_demographics(rec: Recommender) -> dict[str, list]:
    """The run's user columns besides the id (age, gender, occupation, ... where the data had them)."""
    t = rec.run.parquet("users", optional=True)  # checked: a damaged file is said, not read as no columns
    if t is None:
        return {}
    skip = {"user_id", "user_idx"}
    return {c: t.column(c).to_pylist() for c in t.column_names if c not in skip and not c.startswith("__")}


def _sample(n: int, k: int | None, seed: int) -> np.ndarray:
    if k is None or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def projector(rec: Recommender, out: Path, sample: int | None = None, users: int = 0, seed: int = 0,
              base_url: str | None = None) -> dict:
    """TensorBoard Embedding Projector files: tensors.tsv + metadata.tsv (+ users_*), the plugin's
    projector_config.pbtxt, the standalone projector's JSON config, and an empty TensorBoard event file (so
    ``tensorboard --logdir`` over a folder of several exports lists each as a run).

    projector.tensorflow.org fetches the JSON config's paths relative to its own page: with ``base_url`` (the
    URL this folder will be served from) they are absolute, so ``?config=BASE_URL/projector_config.json``
    works; without it, load the files with the projector's Load button."""
    rows = _sample(len(rec.catalogue.titles), sample, seed)
    # the als columns alone where the model adds the low-pass block (Factors.cos_movie: what similar movies read; a
    # review: the projector's neighbours over both were not the served ones)
    Q = np.asarray(rec.factors.cos_movie)[rows]
    meta = _movie_meta(rec)
    lines = ["\t".join(tsv_cell(v) for v in meta[i]) + "\tmovie" for i in rows]
    # movie feature embeddings (a genre's vector, ...) in the same space, so genres show among the movies
    feats = rec.run.manifest.get("features") or {}
    d = int(rec.run.manifest["model"]["dim"])
    extra = []
    for col in feats.get("movie", []):
        name = col["key"].replace(".", "_")
        if col["key"] not in feats.get("embedded", []):
            continue
        table = rec.run.array(f"feature_{name}")
        for i, value in enumerate(col["vocab"]):
            if value == "unknown":
                continue
            v = np.zeros(Q.shape[1], dtype=np.float32)
            v[:d] = table[i]
            extra.append(v)
            kind = col["key"].split(".")[1]
            lines.append("\t".join(["", f"{kind}: {tsv_cell(value)}", "", tsv_cell(value) if kind == "genre" else "",
                                    tsv_cell(value), "", kind]))
    if extra:
        Q = np.vstack([Q, np.stack(extra)])
    _write_tensor_tsv(out / "tensors.tsv", Q)
    with open(out / "metadata.tsv", "w", encoding="utf-8", newline="\n") as fh:
        fh.write("movie_id\ttitle\tyear\tfirst_genre\tgenres\tn_ratings\tkind\n")
        fh.write("\n".join(lines) + "\n")
    embeddings = [("movies", "tensors.tsv", "metadata.tsv", Q.shape)]
    if users:
        urows = _sample(rec.factors.user.shape[0], users, seed + 1)
        d = rec.factors.als_columns
        U = np.asarray(rec.factors.user)[urows][:, :d] if d else np.asarray(rec.factors.user)[urows]
        _write_tensor_tsv(out / "users_tensors.tsv", U)
        demo = _user_demographics(rec)
        with open(out / "users_metadata.tsv", "w", encoding="utf-8", newline="\n") as fh:
            # a single metadata column has no header row in the projector's format; several have one
            if demo:
                fh.write("\t".join(["user_id", *demo]) + "\n")
            for u in urows:
                uid = py_id(rec.catalogue.user_ids[u])
                fh.write("\t".join([tsv_cell(uid), *(tsv_cell(v[u]) for v in demo.values())]) + "\n")
        embeddings.append(("users", "users_tensors.tsv", "users_metadata.tsv", U.shape))
    pbtxt = "".join(f'embeddings {{\n  tensor_name: "{n}"\n  tensor_path: "{t}"\n  metadata_path: "{m}"\n}}\n'
                    for n, t, m, _ in embeddings)
    (out / "projector_config.pbtxt").write_text(pbtxt, encoding="utf-8")
    prefix = base_url.rstrip("/") + "/" if base_url else ""
    standalone = {"embeddings": [{"tensorName": n, "tensorShape": [int(s[0]), int(s[1])], "tensorPath": prefix + t,
                                  "metadataPath": prefix + m} for n, t, m, s in embeddings]}
    (out / "projector_config.json").write_text(json.dumps(standalone, indent=2) + "\n", encoding="utf-8")
    write_empty_event_file(out)
    return {"movies": int(rows.size), "users": int(users and min(users, rec.factors.user.shape[0]))}


def write_empty_event_file(out: Path) -> Path:
    """A TensorBoard event file holding only the version record (Event{wall_time, file_version}), written
    without TensorFlow: TensorBoard discovers runs below --logdir through such files."""
    from embedrec.training.tfevents import new_event_file

    return new_event_file(out)
