"""What a run was trained on and with, as its model folder records them: the dataset (``trained_on``, ingest's hint;
``run_dataset``, loaded and checked to be that dataset, or read where it moved: ``moved_dataset``, by
data/layout.py's rules, which ``history`` follows too) and the config (``run_eval_k``, the cut-offs ``evaluate``
reports by default; ``sets_not_applied``, the ``--set`` model keys, MODEL_KEYS, a command that reads the run
cannot apply, which the CLI warns of). Above run.py: it opens the run to read its config.yaml.
"""

from __future__ import annotations

from pathlib import Path

from embedrec.errors import EmbedrecError
from embedrec.run import Run, load_run
from embedrec.run_layout import CONFIG, MANIFEST, run_of
from embedrec.run_updates import trained_movies, trained_users


def trained_on(run_dir: str | Path) -> Path | None:
    """The dataset folder the model ``run_dir`` serves was trained on (resolved), as its manifest records it; None
    where the folder serves no model or its manifest does not say (ingest's hint: a run of the dataset's own)."""
    from embedrec.fsutil.files import probe_json

    path = ((probe_json(Path(run_dir) / "current" / MANIFEST) or {}).get("dataset") or {}).get("path")
    return Path(path).resolve() if isinstance(path, str) and path else None


def moved_dataset(run: Run, moved_to: str | Path) -> Path | None:
    """Where to read ``run``'s dataset from, given a config's data.prepared ``moved_to`` (`evaluate`'s): there,
    where the recorded folder holds no dataset now (moved); else None, the recorded one, said in a warning where
    ``moved_to`` names another folder (``data.layout.moved_to``, history's rule too)."""
    from embedrec.data.layout import moved_to as moved_rule

    rec = run.manifest.get("dataset") or {}
    return moved_rule(rec.get("path"), moved_to, rec.get("files_fingerprint"))


def run_dataset(run: Run, dataset_dir: str | Path | None = None, moved_to: str | Path | None = None):
    """Load the dataset a run was trained on and check it is that dataset (its fingerprint, its counts), not
    merely one of the same size at the same path (e.g. re-ingested with another split seed since). ``dataset_dir``:
    read that one instead; ``moved_to``: where to look when the recorded folder is gone (the dataset was moved).
    Where it is and what is said where it is not: ``data.layout`` (``embedrec history`` says the same)."""
    from embedrec.data import layout
    from embedrec.data.dataset import load_dataset

    rec = run.manifest.get("dataset") or {}
    name = str(run_of(run.path))
    given = "dataset_dir"  # the argument a refusal of the folder names (a review: moved_to= was said dataset_dir=)
    if dataset_dir is None and moved_to is not None:
        dataset_dir, given = moved_dataset(run, moved_to), "moved_to"
    ds = load_dataset(layout.find(rec.get("path"), dataset_dir, name, "er.open(run_dir).evaluate(dataset_dir=FOLDER)",
                                  given))
    layout.check_same(ds.path, ds.manifest, ds.fingerprint, rec.get("path"), rec.get("files_fingerprint"), name,
                      trained_users(run.manifest) if "n_users" in run.manifest else None,  # update-users' added
                      trained_movies(run.manifest) if "n_movies" in run.manifest else None,  # users and movies
                      given)                                                              # come after the dataset's
    return ds


def run_eval_k(run) -> tuple[int, ...]:
    """A run's recorded ``train.eval_k`` (its config.yaml, checked against the manifest), else (10, 20): the
    cut-offs ``evaluate`` reports by default, what ``train`` printed."""
    import yaml

    from embedrec.config import TrainConfig

    raw = run.read_verified(run.path / CONFIG)
    try:
        ks = (yaml.safe_load(raw) or {}).get("train", {}).get("eval_k") if raw is not None else None
    except (yaml.YAMLError, AttributeError):
        ks = None
    return tuple(ks) if isinstance(ks, list) and ks and all(isinstance(k, int) and k >= 1 for k in ks) else \
        tuple(TrainConfig().eval_k)


# an index record's params (serve.index._params) -> the index config key each was built with
_INDEX_PARAMS = {"M": "hnsw_m", "efConstruction": "ef_construction", "efSearch": "ef_search", "nlist": "nlist",
                 "nprobe": "nprobe"}


def run_index_config(run):
    """The index settings of the index a run serves: its manifest's ``index`` record (the kind and the parameters
    it was built with, an ``index rebuild``'s since training among them) over its config.yaml's ``index`` (the
    rest: exact_max, the recall target and sample), each that is missing or not one the config takes its default;
    a config's ``auto`` kept where the record's kind is the one auto gives. What update-users builds the indexes
    again with where it adds movies (a review: from config.yaml alone, an index rebuilt flat went back to hnsw)."""
    import dataclasses

    import yaml

    from embedrec.config import IndexConfig
    from embedrec.serve.index import resolve_kind

    raw = run.read_verified(run.path / CONFIG)
    try:
        given = (yaml.safe_load(raw) or {}).get("index") if raw is not None else None
    except (yaml.YAMLError, AttributeError):
        given = None
    fields = {f.name for f in dataclasses.fields(IndexConfig)}
    try:
        cfg = IndexConfig(**{k: v for k, v in (given or {}).items() if k in fields})
    except Exception:  # noqa: BLE001 - a recorded value the config refuses now: the defaults
        cfg = IndexConfig()
    rec = run.manifest.get("index") if isinstance(run.manifest.get("index"), dict) else {}
    kind, n = rec.get("kind"), run.manifest.get("n_movies")
    changes = {}
    if isinstance(kind, str) and kind in ("flat", "hnsw", "ivf", "ivf_sq8") and not (
            cfg.kind == "auto" and isinstance(n, int) and resolve_kind(cfg, n) == kind):
        changes["kind"] = kind
    for name, key in _INDEX_PARAMS.items():
        v = (rec.get("params") or {}).get(name) if isinstance(rec.get("params"), dict) else None
        if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
            changes[key] = v
    try:
        return dataclasses.replace(cfg, **changes)
    except Exception:  # noqa: BLE001 - a record the config refuses: the config's own
        return cfg


# the keys of a trained run's model that a config may set and a run-reading command cannot apply, compared with
# the run's config.yaml as given (not train.* or model.dim: a run records what its selection chose there, so
# the --set it was trained with would read as another value; not data.* or split.*: the dataset's ingest holds
# those, not the train command's config)
MODEL_KEYS = ("model.objective", "features.", "train.als_newuser_prior")  # (the last: recommend --prior sets it per request)


def sets_not_applied(run_dir, cfg) -> list[tuple[str, str, str]]:
    """(key, value, the run's value) for each key of ``cfg.set_keys`` (the --set / overrides given) among
    MODEL_KEYS whose value differs from what the run at ``run_dir`` was trained with; [] where the run cannot be
    read (the command says why)."""
    keys = sorted(k for k in cfg.set_keys if k.startswith(MODEL_KEYS)
                  and not any(o != k and o.startswith(k + ".") for o in cfg.set_keys))  # leaves, not their sections
    if not keys:
        return []
    import yaml

    try:
        run = load_run(run_dir)
        raw = run.read_verified(run.path / CONFIG)
        trained = yaml.safe_load(raw) if raw is not None else None
    except (EmbedrecError, yaml.YAMLError):
        return []
    if not isinstance(trained, dict):
        return []
    out = []
    for key in keys:
        was, now = trained, cfg
        for part in key.split("."):
            was = was.get(part) if isinstance(was, dict) else None
            now = getattr(now, part, None)
        if _as_used(key, was) != _as_used(key, now):
            out.append((key, _shown(now), _shown(was)))
    return out


def _as_used(key: str, value):
    """A value as the model uses it: a feature list's columns as a set (the model takes each once, in any order:
    a review found [gender, age] said to differ from [age, gender])."""
    if key in ("features.movie", "features.user") and isinstance(value, list):
        return sorted(set(map(str, value)))
    return value


def _shown(v) -> str:
    """A config value as YAML's flow style writes it: true, null, [a, b]."""
    if v is None or isinstance(v, bool):
        return "null" if v is None else str(v).lower()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_shown(x) for x in v) + "]"
    return str(v)
