"""The config's sections: one frozen dataclass per top-level key of a YAML config (data, split, model, features,
train, tune, index, recommend, run), each field's type and default and the limits ``config_values`` checks a
value against (``_opt``: min, max, gt), and the constants of the ``auto`` values a section resolves
(``TrainConfig.weight_decays``, ``TrainConfig.learning_rate``). The whole config, ``Config``, which holds one of
each, and how one is built are ``config.py``'s, where these classes are public too (``from embedrec.config import
DataConfig``); what their keys must hold together is ``config_checks.py``'s.

The standard library only: every layer may read its section's type from here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Union

MAX_DIM = 4096  # model.dim and train.als_dims
NEWUSER_TOLD = (1, 2, 3, 5, 10, 20, 50)  # the told counts of train.als_newuser_prior's weights (serve.prior)


def _opt(default: Any = None, **meta: Any) -> Any:
    """A dataclass field with validation metadata (min, max, gt)."""
    if isinstance(default, list):
        return field(default_factory=lambda d=default: list(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ColumnsConfig:
    """The column names of a ratings file (data.columns)."""

    user: str = "user_id"
    movie: str = "movie_id"
    rating: Union[str, None] = "rating"
    timestamp: Union[str, None] = "timestamp"
    title: str = "title"
    genres: str = "genres"


@dataclass(frozen=True)
class DataConfig:
    """Where the ratings come from and how to read and clean them (data)."""

    source: str = "ml-100k"
    format: Literal["auto", "movielens", "recbole", "csv", "tsv", "parquet"] = "auto"
    movies: Union[str, None] = None
    # split.method=given: the held-out rows' own files, read as data.source is (its columns, format, encoding)
    test_source: Union[str, None] = None
    valid_source: Union[str, None] = None
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)
    separator: Union[str, None] = None
    movies_separator: Union[str, None] = None
    header: bool = True
    encoding: str = "utf-8"
    decimal: str = "."
    genre_separator: str = "|"
    id_type: Literal["int", "auto", "str"] = "int"
    id_case: Literal["keep", "fold"] = "keep"
    timestamp_unit: Literal["auto", "s", "ms", "us", "ns"] = "auto"
    timestamp_format: Union[str, None] = None
    event_weights: Union[dict[str, float], None] = None
    rating_scale: Union[list[float], None] = None
    unknown_movies: Literal["keep", "drop"] = "keep"
    missing: Literal["error", "drop"] = "error"
    bad_lines: Literal["error", "skip"] = "error"
    out_of_scale: Literal["error", "drop"] = "error"
    keep_unrated_movies: bool = False
    min_rating: Union[float, Literal["auto"], None] = "auto"
    repeats: Literal["auto", "latest", "sum"] = "auto"
    duplicates: Literal["keep", "drop"] = "keep"
    min_user_ratings: int = _opt(0, min=0)
    min_movie_ratings: int = _opt(0, min=0)
    cache_dir: Union[str, None] = None
    prepared: str = "data/prepared/ml-100k"


@dataclass(frozen=True)
class SplitConfig:
    """How ratings are split into train, valid and test (split)."""

    # given: the split the data gives (data.test_source / data.valid_source, or RecBole's NAME.train/valid/test.inter)
    method: Literal["random", "user_time", "global_time", "given"] = "random"
    valid: float = _opt(0.1, min=0.0, max=0.9)
    test: float = _opt(0.2, min=0.0, max=0.9)
    last_k: Union[int, None] = _opt(None, min=1)
    cold_start: bool = False
    cold_movies: float = _opt(0.0, min=0.0, max=0.5)
    seed: int = _opt(42, min=0, max=2**32 - 1)
    # K-fold cross-validation (method random only): each user's ratings dealt into `folds` folds, `fold` the test one
    folds: Union[int, None] = _opt(None, min=2)
    fold: int = _opt(0, min=0)


@dataclass(frozen=True)
class ModelConfig:
    """The model: objective, loss, dimension, initialisation (model)."""

    objective: Literal["explicit", "implicit"] = "implicit"
    loss: Literal["auto", "mse", "bpr", "softmax", "als"] = "auto"
    dim: Union[int, Literal["auto"]] = _opt(128, min=1, max=MAX_DIM)
    init_std: float = _opt(0.05, gt=0.0, max=1.0)  # 1e30 overflowed, then blamed train.lr (a red team)
    biases: bool = True
    implicit_terms: Union[bool, Literal["auto"]] = "auto"


@dataclass(frozen=True)
class FeaturesConfig:
    """Side features: movie and user columns, their dimensions and crosses (features)."""

    movie: list[str] = _opt([])
    user: list[str] = _opt([])
    year_edges: Union[list[int], None] = None
    age_edges: Union[list[float], None] = _opt([18.0, 25.0, 35.0, 45.0, 50.0, 56.0])
    dims: list[str] = _opt([])
    crosses: list[list[str]] = _opt([])
    cross_buckets: int = _opt(10000, min=1, max=10_000_000)  # rows of a table: 1e13 tried to allocate 40 TB

    @property
    def active(self) -> bool:
        return bool(self.movie or self.user or self.crosses)


# train.weight_decay_user/movie: auto: 0.1 for the rating (mse) and softmax losses (0.1 was best on ML-100K
# validation among 0.05-0.4 for explicit ratings), 0.001 for bpr, where 0.1 held the lists at most-popular's
# level (valid NDCG@10 on ML-100K's default split, hogwild lr 0.05: 0.1 -> 0.108, 0.01 -> 0.181, 0.001 -> 0.182,
# 0.0001 -> 0.178; adam lr 0.003: 0.01 -> 0.174, 0.001 -> 0.179, 0.0001 -> 0.179; BENCHMARKS.md, session 28)
WEIGHT_DECAY, BPR_WEIGHT_DECAY = 0.1, 0.001

# train.lr: auto: per example for hogwild, 0.01 for the rating (mse) loss (configs/ml100k-explicit.yaml: chosen on
# ML-100K's validation split) and 0.05 for bpr (valid NDCG@10 0.182 with weight decay 0.001, session 28); 0.003
# for the batch optimisers (adam's; the default before train.optimizer had auto)
HOGWILD_LRS, LR = {"mse": 0.01, "bpr": 0.05}, 0.003


@dataclass(frozen=True)
class TrainConfig:
    """The optimiser, epochs, regularisation, early stopping and threads (train)."""

    epochs: int = _opt(100, min=1)
    batch_size: int = _opt(1024, min=1)
    optimizer: Literal["auto", "adam", "sparse_adam", "sgd", "adagrad", "hogwild"] = "auto"
    lr: Union[float, Literal["auto"]] = _opt("auto", gt=0.0)
    weight_decay_user: Union[float, Literal["auto"]] = _opt("auto", min=0.0)
    weight_decay_movie: Union[float, Literal["auto"]] = _opt("auto", min=0.0)
    weight_decay_bias: float = _opt(0.001, min=0.0)
    negatives: int = _opt(1, min=1, max=100_000)  # 1,000,000 tried to allocate 8 GB (a red team); bpr: MAX_BPR_NEGATIVES
    softmax_full_max: int = _opt(20000, min=0)
    metric: str = "auto"
    patience: Union[int, Literal["auto"]] = _opt("auto", min=0)
    eval_k: list[int] = _opt([10, 20])
    eval_users: int = _opt(5000, min=0)
    threads: int = _opt(0, min=0)
    refit: bool = True
    keep_checkpoints: Union[bool, Literal["auto"]] = "auto"
    compile: bool = False
    als_unobserved: Union[float, Literal["auto"]] = _opt("auto", gt=0.0, max=1000.0)
    als_reg: Union[float, Literal["auto"]] = _opt("auto", min=0.0, max=1000.0)
    als_reg_exponent: float = _opt(1.0, min=0.0, max=2.0)
    als_cg_steps: int = _opt(3, min=1, max=100)
    als_rating_weight: float = _opt(0.0, min=0.0, max=1000.0)
    als_count_weight: Union[float, Literal["auto"]] = _opt("auto", min=0.0, max=1000.0)
    als_recency: Union[float, Literal["auto"]] = _opt("auto", min=0.0, max=1000.0)
    als_user_unobserved: Union[float, Literal["auto"]] = _opt("auto", gt=0.0, max=1000.0)
    als_trend: Union[float, Literal["auto"]] = _opt("auto", min=0.0, max=1000.0)
    als_trend_window: Union[float, Literal["auto"]] = _opt("auto", gt=0.0, max=1.0)
    als_trend_activity: Union[float, Literal["auto"]] = _opt("auto", min=0.0, max=4.0)
    # GF-CF's low-pass block (training.lowpass): its weight c (auto: chosen on valid; 0 off) and its columns
    als_lowpass: Union[float, Literal["auto"]] = _opt("auto", min=0.0, max=100.0)
    als_lowpass_k: Union[int, Literal["auto"]] = _opt("auto", min=1, max=4096)
    # a new user's popularity prior (serve.prior): auto (chosen on valid), a number (every history alike) or
    # one weight for each of 1, 2, 3, 5, 10, 20 and 50 told movies
    als_newuser_prior: Union[float, list[float], Literal["auto"]] = _opt("auto")
    als_dims: Union[list[int], Literal["auto"]] = _opt("auto")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    fetch_rows: int = _opt(0, min=0)
    seed: int = _opt(42, min=0, max=2**32 - 1)

    def weight_decays(self, loss: str) -> tuple[float, float]:
        """(user, movie) L2 per example for ``loss``: each as set, or its ``auto`` value (above)."""
        auto = BPR_WEIGHT_DECAY if loss == "bpr" else WEIGHT_DECAY
        return tuple(auto if v == "auto" else float(v) for v in (self.weight_decay_user, self.weight_decay_movie))

    def learning_rate(self, optimizer: str, loss: str) -> float:
        """train.lr as set, or its ``auto`` value for ``optimizer`` (a concrete one) and ``loss`` (above)."""
        if self.lr != "auto":
            return float(self.lr)
        return HOGWILD_LRS.get(loss, LR) if optimizer == "hogwild" else LR


@dataclass(frozen=True)
class TuneConfig:
    """The dimensions tune-dims tries and how it chooses (tune)."""

    dims: list[int] = _opt([4, 8, 16, 32, 64, 128, 256])
    weight_decays: Union[list[float], None] = None
    # auto: as train would choose: the als model by train.als_dims' rule, the smallest dimension within
    # training.dims.DIM_GAIN (0.5%) of the best; the best for the others, for which train chooses no dimension
    tolerance: Union[float, Literal["auto"]] = _opt("auto", min=0.0, max=0.99)
    workers: int = _opt(2, min=1)
    threads: int = _opt(0, min=0)
    dir: Union[str, None] = None


@dataclass(frozen=True)
class IndexConfig:
    """The FAISS index kind and its search settings (index)."""

    kind: Literal["auto", "flat", "hnsw", "ivf", "ivf_sq8"] = "auto"
    exact_max: int = _opt(100000, min=0)
    hnsw_m: int = _opt(32, min=4, max=256)  # FAISS's links per node: 16-64 in practice; 100,000 wrote 2.6 GB
    ef_construction: int = _opt(200, min=8, max=65536)
    ef_search: int = _opt(128, min=1, max=65536)
    nlist: Union[int, None] = _opt(None, min=1)
    nprobe: int = _opt(32, min=1)
    recall_sample: int = _opt(2000, min=10)
    target_recall: float = _opt(0.95, min=0.0, max=1.0)


@dataclass(frozen=True)
class RecommendConfig:
    """Answers: movies per answer, unknown users, batches, new-user fold-in, explanations (recommend)."""

    k: int = _opt(10, min=1)
    fallback: Literal["none", "popular"] = "none"
    batch_size: int = _opt(4096, min=1)
    foldin_reg: float = _opt(0.1, min=1e-6)  # 1e-20 made the explicit fold-in singular (LinAlgError; a red team)
    foldin_alpha: float = _opt(10.0, min=0.0)
    foldin_recency: float = _opt(4.0, min=0.0, max=1000.0)  # how it was chosen: serve/foldin.py
    explain: int = _opt(3, min=1)  # rated movies recommend --explain names per listed movie


@dataclass(frozen=True)
class RunConfig:
    """The run directory (run)."""

    dir: str = "runs/ml-100k"


SECTIONS = {ColumnsConfig: "data.columns", DataConfig: "data", SplitConfig: "split", ModelConfig: "model",
            FeaturesConfig: "features", TrainConfig: "train", TuneConfig: "tune", IndexConfig: "index",
            RecommendConfig: "recommend", RunConfig: "run"}  # each section's dotted prefix


def frozen_hint(cls, prefix: str | None) -> None:
    """Give the frozen dataclass ``cls`` an assignment error that says how a config changes (a notebook review:
    ``cfg.model.dim = 3`` raised the dataclass's bare "cannot assign to field 'dim'"): still a
    ``FrozenInstanceError`` (an AttributeError), naming ``cfg.updated``. ``prefix``: the section's dotted key,
    None for the whole config."""
    def refuse(self, name, value=None):
        key = f"{prefix}.{name}" if prefix else f"{name}.KEY"
        raise dataclasses.FrozenInstanceError(
            f"cannot assign to field {name!r}: a config is frozen (one handed to a function never changes under its "
            f"caller); make a changed copy with cfg.updated({{{key!r}: value}})")

    cls.__setattr__ = lambda self, name, value: refuse(self, name, value)
    cls.__delattr__ = lambda self, name: refuse(self, name)


for _cls, _prefix in SECTIONS.items():
    frozen_hint(_cls, _prefix)
