"""What a folder is, as the run directory's readers and writers ask it, and the refusals that follow: a run's
entry (``is_run_entry``), a prepared dataset (``is_dataset_folder``), a model folder copied out of its run
(``bare_model_folder``, served read-only), a folder training works in (``training_folder_of``), the trained runs
beside one (``trained_beside``, for "no trained model"); ``check_run_folder``, which refuses to write a run into a
dataset, a copied-out model folder or a folder of the user's own files (and ``refuse_copied_current``, a run copied
with its links followed); and the fields of a run manifest its readers take on trust (``RUN_FIELDS``) with
``other_manifest``, which refuses another model's manifest copied in. numpy-free: serving imports this.
"""

from __future__ import annotations

import os
from pathlib import Path

from embedrec.config_sections import NEWUSER_TOLD
from embedrec.data.layout import versioned
from embedrec.data.levels import MAX_LEVELS
from embedrec.errors import ArtifactError, OutputRefused, marked, sh_quote, shorten
from embedrec.fsutil.files import io_error, probe_json
from embedrec.fsutil.integrity import file_entries, finite
from embedrec.fsutil.locks import LOCK_LINE
from embedrec.fsutil.outputs import refuse_inside_store
from embedrec.run_layout import (
    ARTIFACTS,
    CANDIDATE_NAME,
    DIM_NAME,
    MANIFEST,
    MODEL_FOLDER,
    REFIT,
    TUNE_DIR,
    TUNE_RESULTS,
    UPDATES,
    WRITER_LOCK,
)


def is_run_entry(p: Path) -> bool:
    """Whether ``p`` shows its folder is an embedrec run: a model folder or the ``current`` link, a writer lock
    holding what embedrec writes in one (empty: made, then killed before its line), or tune-dims' folder. A
    user's own '.lock' or 'tune' is not one (a review: a folder holding them had its metrics.jsonl and
    checkpoint.pt replaced)."""
    if p.name.startswith(ARTIFACTS + "-"):
        return True
    if p.name == "current":  # the link to a model folder beside it (a cp -rL copy's folder: refused on its own);
        # a user's own 'current' link (to releases/v3) is not one (a red team: then their files were replaced)
        if not p.is_symlink():
            return p.is_dir()
        try:
            return Path(os.readlink(p)).name.startswith(ARTIFACTS + "-")
        except OSError:
            return False
    if p.name == WRITER_LOCK:
        try:
            head = p.read_bytes()[:200] if p.is_file() and not p.is_symlink() else b"-"
        except OSError:
            return False
        return LOCK_LINE.fullmatch(head) is not None  # empty, or what a holder wrote
    if p.name == TUNE_DIR and p.is_dir() and not p.is_symlink():
        return (p / TUNE_RESULTS).is_file() or (p / WRITER_LOCK).is_file() and is_run_entry(p / WRITER_LOCK) or \
            not any(p.iterdir())
    return False


def is_dataset_folder(folder: Path) -> bool:
    """Whether ``folder`` is a prepared dataset (what ingest writes): its ``current`` links to gen-*, or, copied
    with links followed (``cp -rL``), ``current`` is a folder beside DATASET/manifest.json, which a run never has."""
    return versioned(folder) or (folder / "current").is_dir() and (folder / MANIFEST).is_file()


def bare_model_folder(folder: Path) -> dict | None:
    """The manifest of ``folder`` where it is a model folder on its own, copied out of its run (``cp -rL
    runs/x/current model1``): a run's manifest.json in it, no ``current``, and not a model folder of a run (named
    artifacts-*, or the folder a run's ``current`` is, copied with links followed); None otherwise. It serves
    wherever it is and whatever its name, read-only (check_run_folder refuses to write a run there)."""
    folder = Path(folder)
    if MODEL_FOLDER.fullmatch(folder.name) or os.path.lexists(folder / "current") or \
            not (folder / MANIFEST).is_file():
        return None
    if folder.name == "current" and any((folder.parent / n).exists() for n in (WRITER_LOCK, REFIT)) or \
            folder.name == "current" and any(MODEL_FOLDER.fullmatch(c.name) for c in folder.parent.glob(
                f"{ARTIFACTS}-*")):  # RUN/current of a run copied with links followed: the run's model
        return None
    m = probe_json(folder / MANIFEST)
    return m if isinstance(m, dict) and "n_users" in m and "embeddings_sha256" in m else None


def training_folder_of(path: str | Path) -> Path | None:
    """The folder a run's training works in (RUN/refit, RUN/als-reg-0.01, RUN/als-dim-256) or a model folder of it
    that ``path`` is in or is, or None: tune-dims may write beside a run's current (RUN/tune), never there, where
    every later train would find folders it did not make (a red team: 'tune-dims --run RUN/refit')."""
    p = Path(os.path.abspath(path))
    for child, d in zip((p, *p.parents), p.parents):
        if (d / "current").is_symlink() and (child.name == REFIT or CANDIDATE_NAME.fullmatch(child.name)
                                             or DIM_NAME.fullmatch(child.name) or MODEL_FOLDER.fullmatch(child.name)):
            return child
    return None


def trained_beside(run_dir: Path) -> str:
    """' (trained runs beside it: «--run|run_dir=» runs/a, runs/b)': the folders next to ``run_dir`` that hold a
    published model, for someone who trained on their own data and then left --run out (at most 3 named): a name
    close to ``run_dir``'s first (a typo), then the latest published (a first-hour review: by name alone, a typo
    in run.dir listed three others and hid runs/ml-100k among '8 more')."""
    import difflib

    try:
        runs = [d for d in run_dir.parent.iterdir() if d != run_dir and (d / "current").is_dir()
                and not is_dataset_folder(d)  # a prepared dataset has a current/ too
                and "n_users" in (probe_json(d / "current" / MANIFEST) or {})]  # one that opens
        published = {d: os.lstat(d / "current").st_mtime for d in runs}  # when its current model was published
    except OSError:
        return ""
    if not runs:
        return ""
    close = set(difflib.get_close_matches(run_dir.name, [d.name for d in runs], n=3, cutoff=0.6))
    found = [str(d) for d in sorted(runs, key=lambda d: (d.name not in close, -published[d], d.name))]
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    # each in both terms (a first-hour review: the library's read 'er.open(...) runs/a')
    return f" (trained runs beside it: {', '.join(marked(f'--run {sh_quote(str(d))}', f'er.open({str(d)!r})') for d in found[:3])}{more})"


def check_run_folder(run_dir: str | Path, contents: bool = True, command: str = "embedrec train") -> None:
    """Refuse to write a run into a prepared dataset (publishing would swap its ``current``) and, with
    ``contents``, into a folder of the user's own files, where training would replace a metrics.jsonl or
    checkpoint.pt it did not write, or a file of its own named ``current``: ``embedrec train``'s folder, and
    ``TrainedModel.save``'s, is new, empty, or an embedrec run. Never inside another run's or a dataset's folder
    (beside its ``current`` or in a generation), where ingest and export refuse to write too (a red team: a run
    trained into runs/x/current/sub, and verify then failed on runs/x)."""
    run_dir = Path(run_dir)
    try:
        refuse_inside_store(run_dir, fix="choose a run.dir outside that folder")
    except OutputRefused as e:
        raise OutputRefused(f"run.dir {e.raw}") from None
    if not run_dir.exists() and not run_dir.is_symlink():
        return
    if not run_dir.is_dir():
        raise OutputRefused(f"run.dir '{run_dir}' is not a folder; choose another run.dir")
    if is_dataset_folder(run_dir):
        raise OutputRefused(f"run.dir '{run_dir}' is a prepared dataset (what embedrec ingest writes), not a run; "
                            "choose another run.dir (e.g. runs/NAME)")
    bare = bare_model_folder(run_dir)
    if bare is not None:  # it serves as it is, read-only: a run written into it would put a run inside a model
        raise OutputRefused(f"run.dir '{run_dir}' is a model folder copied out of a run (its manifest.json and "
                            f"files, no 'current'): it serves as it is («--run it with recommend, predict, evaluate or "
                            f"export; embedrec verify it|er.open it; er.verify_files it»), but nothing is written into "
                            f"it; "
                            f"{_instead(run_dir, bare, command)}")
    current = run_dir / "current"
    if current.exists() and not current.is_symlink() and not current.is_dir():  # a user's file of that name (a
        # resume too: a red team's 'train --resume' ran its whole selection and refit, then failed to publish)
        raise OutputRefused(f"run.dir '{run_dir}' holds a file 'current' that embedrec did not write (a run's current "
                            "is a link to its model folder), which saving would replace: move it away, or choose a "
                            "new or empty folder for run.dir")
    if not contents:
        return
    try:
        names = sorted(os.listdir(run_dir))
    except OSError as e:
        raise (io_error(e, run_dir, "choose another run.dir") or e) from None
    refuse_copied_current(run_dir)
    # an empty writer lock (made, then killed before its line) marks a run only where nothing else is there: beside
    # files of the user's it may be theirs (a red team: an empty '.lock' let train replace their metrics.jsonl)
    marks = [n for n in names if is_run_entry(run_dir / n) and not (n == WRITER_LOCK and len(names) > 1 and
                                                                     _empty_file(run_dir / n))]
    if not names or marks:
        return
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    raise OutputRefused(f"run.dir '{run_dir}' is not empty and holds no embedrec run ({shown}); train writes "
                        "checkpoint.pt and metrics.jsonl there and would replace files of those names: choose a new "
                        "or empty folder for run.dir")


def _instead(folder: Path, manifest: dict, command: str) -> str:
    """What to do instead of writing a run into a bare model folder (:func:`check_run_folder`), for ``command``."""
    if command == "embedrec update-users":
        own = manifest.get("model_folder") if isinstance(manifest.get("model_folder"), dict) else {}
        run = own.get("run") if isinstance(own.get("run"), str) else "RUN"
        return (f"update the run it was copied from (embedrec update-users --run {sh_quote(run)} ...) and copy the "
                f"model out again (cp -rL {sh_quote(run + '/current')} {sh_quote(str(folder))})")
    if command != "embedrec index rebuild":
        return marked("train into a new or empty run.dir (e.g. runs/NAME), or into the run it was copied from",
                      "save to a new or empty folder, or to the run it was copied from")
    own = manifest.get("model_folder") if isinstance(manifest.get("model_folder"), dict) else {}
    name = own.get("name") if isinstance(own.get("name"), str) and MODEL_FOLDER.fullmatch(own["name"]) else \
        f"{ARTIFACTS}-20000101T000000-000000000"
    run = sh_quote(f"{folder}-run")
    return (f"rebuild the index of the run it was copied from and copy the model out again, or make it a run "
            f"first: mkdir {run} && cp -a {sh_quote(str(folder))} {run}/{name} && ln -s {name} {run}/current, "
            f"then embedrec index rebuild --run {run}")


def refuse_copied_current(run_dir: Path) -> None:
    """A run copied with its links followed (``cp -rL``) has a folder named ``current``, which publishing cannot
    swap: said before a fit, not after it (a review: the whole fit ran, then 'Is a directory')."""
    current = run_dir / "current"
    if current.is_dir() and not current.is_symlink():
        raise ArtifactError(f"'{current}' is a folder, not the link to a model folder embedrec makes (the run was "
                            "copied with links followed, e.g. cp -rL), so a new model cannot be published there; "
                            "write to another run.dir (copy runs with cp -a, which keeps the link)")


def _empty_file(p: Path) -> bool:
    try:
        return p.stat().st_size == 0
    except OSError:
        return False


# what the readers of a run manifest take from it without a second look (integrity.check_fields: kind, required);
# training_ratings has its own check (checked_training_ratings, below), the index its own (serve.index)
RUN_FIELDS = {
    "model": ("dict", True), "model.objective": (("explicit", "implicit"), True), "model.loss": ("str|null", False),
    "model.dim": ("size", True), "model.user_bias": ("bool", False), "model.movie_bias": ("bool", False),
    "dataset": ("dict", True), "dataset.path": ("str|null", False), "dataset.files_fingerprint": ("str|null", False),
    "dataset.layout": ("str|null", False),
    "dataset.rating_scale": ("range", False), "n_users": ("count", True), "n_movies": ("count", True),
    "global_mean": ("number", False), "refit": ("bool", False), "features": ("dict|null", False),
    "index": ("dict", True), **file_entries("checksums"), **file_entries("index.files"),
    # the arrays' own hashes, before the seal: each .npy file's as written (artifacts.save_hashed, the checksums'
    # own), in a run published before session 58 of the array's bytes (run_publish.sha256_array)
    "files": ("files", False), "files.*": ("sha256", True),
    "embeddings_sha256": ("str", False), "model_folder": ("dict", False), "model_folder.name": ("str", False),
    "model_folder.run": ("str", False), UPDATES: ("list", False),
}


def other_manifest(path: Path, manifest: dict, fix: str, bare: bool = False) -> None:
    """Refuse a manifest.json sealed for another model folder (another run's, copied over this one's: a review
    found every file then blamed in turn, user_factors.npy first), naming both. Where the folder has a model
    folder's name (a run copied with links followed has 'current') and the manifest records its own (written
    since it does). ``bare``: a model folder copied out of its run under a name of its own (bare_model_folder),
    refused only where most of its files are not of the sizes the manifest records, as an older manifest is."""
    own = manifest.get("model_folder")
    if bare or not isinstance(own, dict) or "name" not in own:  # most files of other sizes (no hashing)
        sums = manifest.get("checksums") if isinstance(manifest.get("checksums"), dict) else {}
        differ = sum(not isinstance(e, dict) or _size(path / n) != e.get("bytes") for n, e in sums.items())
        if len(sums) > 2 and differ > len(sums) / 2:
            raise ArtifactError(f"{differ} of the {len(sums)} files of '{path}' are not of the sizes its manifest.json "
                                "records: the manifest is likely another run's, copied here; put back this folder's "
                                f"own manifest.json (from a copy of the run), or {fix}")
        return
    if not MODEL_FOLDER.fullmatch(path.name) or own["name"] == path.name:
        return
    sums = manifest.get("checksums") if isinstance(manifest.get("checksums"), dict) else {}
    if all(isinstance(e, dict) and _size(path / n) == e.get("bytes") for n, e in sums.items()):
        return  # every file of the size it records: a model folder renamed, its checksums still checked as it opens
    theirs = Path(own["run"]) / own["name"] if own.get("run") else own["name"]
    raise ArtifactError(f"'{path / MANIFEST}' is the manifest of another model, '{theirs}', copied here: "
                        f"put back this folder's own manifest.json (from a copy of the run), or {fix}")


def _size(p: Path) -> int | None:
    try:
        return p.stat().st_size
    except OSError:
        return None


# training_ratings.solve's numbers: (key, lowest, highest) each, finite; what training.als.user_solve and
# trained.fold_in_solve write, within the config's own bounds (train.als_*: 0-1000)
_SOLVE_KEYS = {"als": (("a0", 0.0, 1000.0), ("user_unobserved", 0.0, 1000.0), ("reg", 0.0, 1000.0),
                       ("reg_exponent", 0.0, 2.0), ("recency", 0.0, 1000.0), ("trend", 0.0, 1000.0),
                       ("trend_activity", 0.0, 4.0), ("trend_n0", 1e-12, None)),
               "softmax": (("l2", 0.0, None),)}


# a solve recorded before these were: its fits had none (trend_n0 is read only where trend_activity > 0)
_SOLVE_LATER = {"als": {"recency": 0.0, "trend": 0.0, "trend_activity": 0.0, "trend_n0": 1.0}}


def checked_training_ratings(value, where: str) -> dict:
    """A run manifest's ``training_ratings`` ({"min_rating", "rating_weight", "solve"}, a counts model's
    "count_weight", a discrete scale's "rating_levels") as the fold-in reads it, or ArtifactError naming the first
    value no embedrec run writes (a manifest edited and sealed again): a missing or non-finite number, a negative
    weight, an unknown solve, levels that are no scale's. ``where``: the manifest, for the message."""
    def bad(key: str, v, want: str) -> ArtifactError:
        said = "is missing" if want == "missing" else f"is {shorten(repr(v), 40)}, {want}"
        return ArtifactError(f"run manifest '{where}': training_ratings{'.' + key if key else ''} {said}; the file was "
                             "edited: restore the run or train again")

    def number(key: str, v, lo: float | None, hi: float | None, none_ok: bool = False):
        if v is None and none_ok:
            return None
        if not finite(v):  # (an integer past float's range too: np.isfinite's TypeError, a red team)
            raise bad(key, v, "not a finite number")
        if lo is not None and v < lo or hi is not None and v > hi:
            raise bad(key, v, f"outside {lo:g}-{hi:g}" if hi is not None else f"below {lo:g}")
        return float(v)

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad("", value, "not a mapping")
    out = dict(value)
    out["min_rating"] = number("min_rating", value.get("min_rating"), None, None, none_ok=True)
    out["rating_weight"] = number("rating_weight", value.get("rating_weight", 0.0), 0.0, None)
    if "count_weight" in value:  # a model trained on counts (data.repeats=sum; runs before it have none)
        out["count_weight"] = number("count_weight", value["count_weight"], 0.0, None)
    if "rating_levels" in value:  # the values of a discrete scale (runs before session 56 have none)
        levels = value["rating_levels"]
        if not isinstance(levels, list) or not 2 <= len(levels) <= MAX_LEVELS:
            raise bad("rating_levels", levels, f"not a list of 2 to {MAX_LEVELS} ratings")
        out["rating_levels"] = [number("rating_levels", v, None, None) for v in levels]
        if out["rating_levels"] != sorted(set(out["rating_levels"])):
            raise bad("rating_levels", levels, "not distinct ratings in order")
    solve = value.get("solve")
    if solve is None:
        return out
    if not isinstance(solve, dict):
        raise bad("solve", solve, "not a mapping")
    kind = solve.get("loss")
    if not isinstance(kind, str) or kind not in _SOLVE_KEYS:  # (a list or a mapping: no key of _SOLVE_KEYS, a red
        raise bad("solve.loss", kind, "not a solve embedrec writes (als or softmax)")  # team's TypeError)
    solve = {**_SOLVE_LATER.get(kind, {}), **solve}  # keys a run of an earlier embedrec did not write yet
    missing = [k for k, _, _ in _SOLVE_KEYS[kind] if k not in solve]
    if missing:
        raise bad(f"solve.{missing[0]}", "missing", "missing")
    out["solve"] = {"loss": kind, **{k: number(f"solve.{k}", solve.get(k), lo, hi)
                                     for k, lo, hi in _SOLVE_KEYS[kind]}}
    if kind == "als" and out["solve"]["a0"] * out["solve"]["user_unobserved"] + out["solve"]["reg"] <= 0:
        raise bad("solve", solve, "with no unobserved weight and no L2 (a singular solve)")
    if kind == "als" and "newuser_prior" in solve:  # serve.prior's weights, one per NEWUSER_TOLD (a run before session 53 has none: 0)
        table = solve["newuser_prior"]
        if isinstance(table, list) and len(table) == len(NEWUSER_TOLD):
            out["solve"]["newuser_prior"] = [number("solve.newuser_prior", w, 0.0, 1000.0) for w in table]
        elif isinstance(table, list):
            raise bad("solve.newuser_prior", table, f"not {len(NEWUSER_TOLD)} weights")
        else:
            out["solve"]["newuser_prior"] = number("solve.newuser_prior", table, 0.0, 1000.0)
    if kind == "als" and solve.get("lowpass") is not None:  # the low-pass block (training.lowpass; session 60 on)
        rec = solve["lowpass"]
        if not isinstance(rec, dict):
            raise bad("solve.lowpass", rec, "not a mapping")
        got = {k: number(f"solve.lowpass.{k}", rec.get(k), lo, None) for k, lo in
               (("k", 1.0), ("d", 1.0), ("c", 0.0), ("spread", 0.0), ("weight", 0.0))}
        for k in ("k", "d"):
            if got[k] != int(got[k]):
                raise bad(f"solve.lowpass.{k}", rec.get(k), "not a whole number")
            got[k] = int(got[k])
        out["solve"]["lowpass"] = got
    if kind == "als" and solve.get("trend_window") is not None:  # recent popularity's window (session 71 on)
        rec = solve["trend_window"]
        if not isinstance(rec, dict):
            raise bad("solve.trend_window", rec, "not a mapping")
        cut = rec.get("cut")
        if cut is not None and (isinstance(cut, bool) or not isinstance(cut, int) or abs(cut) >= 2 ** 62):
            raise bad("solve.trend_window.cut", cut, "not a whole number of seconds or null")
        sd = number("solve.trend_window.sd", rec.get("sd"), 0.0, 100.0)  # (log counts: their std a few units)
        if 0 < sd < 1e-9:  # (a re-sealed 1e-300 made a new movie's bias inf: a review)
            raise bad("solve.trend_window.sd", rec.get("sd"), "outside 0 or 1e-09-100")
        out["solve"]["trend_window"] = {"cut": cut, "sd": sd,
                                        "mean": number("solve.trend_window.mean", rec.get("mean"), 0.0, 100.0)}
    return out
