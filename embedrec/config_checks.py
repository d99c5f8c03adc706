"""What embedrec's own config keys must hold, alone and together (what any key is checked for, its type and
range, is ``config_values.py``'s): ``_check_consistency``, which every ``Config`` built passes (``load_config``,
``Config.updated``), with its limits (``MAX_THREADS``, ``MAX_EVAL_K``, ``MAX_BPR_NEGATIVES``, ``MAX_FOLDS``); the
side-feature columns (``check_feature_names``, which ``model/features.py`` calls too); and a K-fold split's rules
(``_check_folds``, ``kfold_conflict``, ``check_valid_share``), which cross-validate says in its own terms.

Below ``config.py``; ``metrics`` imported where ``train.metric`` is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from embedrec.config_keys import NULL_PATH_KEYS, PATH_KEYS
from embedrec.config_sections import MAX_DIM, NEWUSER_TOLD, FeaturesConfig, SplitConfig
from embedrec.config_values import close_matches, show
from embedrec.errors import ConfigError

if TYPE_CHECKING:  # annotations only: no import at run time
    from embedrec.config import Config


# the side-feature columns features.py knows (validated here, so the config needs nothing above it)
MOVIE_COLUMNS = ("genre", "decade")
USER_COLUMNS = ("age", "gender", "occupation", "zip")


def check_feature_names(cfg: FeaturesConfig) -> None:
    """The feature columns and crosses name columns that exist (features.py builds them)."""
    valid = [f"movie.{c}" for c in MOVIE_COLUMNS] + [f"user.{c}" for c in USER_COLUMNS]
    for side, names, allowed in (("movie", cfg.movie, MOVIE_COLUMNS), ("user", cfg.user, USER_COLUMNS)):
        for n in names:
            if n not in allowed:
                close = close_matches(n, allowed)
                raise ConfigError(f"config key 'features.{side}': unknown column '{n}'"
                                  + (f"; did you mean '{close[0]}'?" if close else f"; valid: {', '.join(allowed)}"))
    for cross in cfg.crosses:
        if len(cross) != 2:
            raise ConfigError(f"config key 'features.crosses': each cross names two columns, got {cross}")
        for k in cross:
            if k not in valid:
                close = close_matches(k, valid)
                raise ConfigError(f"config key 'features.crosses': unknown column '{k}'"
                                  + (f"; did you mean '{close[0]}'?" if close else f"; valid: {', '.join(valid)}"))
        if cross[0].startswith("movie.") and cross[1].startswith("user."):
            raise ConfigError(f"config key 'features.crosses': write user columns first, e.g. [{cross[1]}, {cross[0]}]")
    if ("age" in cfg.user or any("user.age" in c for c in cfg.crosses)) and not cfg.age_edges:
        raise ConfigError("config key 'features.age_edges': user.age is numeric and needs bucket edges, "
                          "e.g. «--set 'features.age_edges=[18, 25, 35, 45, 50, 56]'|features.age_edges=[18, 25, 35, 45, 50, 56]»")
    for key, edges in (("features.age_edges", cfg.age_edges), ("features.year_edges", cfg.year_edges)):
        if edges and any(b <= a for a, b in zip(edges, edges[1:])):  # a review: [50, 18] gave '<50' and '>=18'
            raise ConfigError(f"config key '{key}': the edges must rise, e.g. [18, 25, 35], not {list(edges)}")
    if cfg.year_edges is not None and not cfg.year_edges:
        raise ConfigError("config key 'features.year_edges': an empty list has no buckets; give rising years, e.g. "
                          "[1960, 1980, 2000], or null for decades")
    used = {f"movie.{'decade' if n == 'year' else n}" for n in cfg.movie} | {f"user.{n}" for n in cfg.user} | \
        {("movie.decade" if k == "movie.year" else k) for c in cfg.crosses for k in c}
    for spec in cfg.dims:  # 'column=int' for a column the features use (else it was ignored without a word)
        name, sep, value = (x.strip() for x in str(spec).partition("="))
        if not sep or not value.lstrip("+").isdigit() or int(value) < 1:
            raise ConfigError(f"config key 'features.dims': '{spec}' should be column=int (at least 1), e.g. "
                              "movie.genre=8")
        if name not in used:
            raise ConfigError(f"config key 'features.dims': '{name}' is not a feature column in use here (in use: "
                              f"{', '.join(sorted(used)) or 'none'})")


SEPARATOR_NAMES = {"\\t": "\t", "tab": "\t", "space": " "}  # data.separator spelled out
MAX_THREADS = 256  # more threads only exhaust memory (torch.set_num_threads(100000) fails after seconds)
MAX_EVAL_K = 10000  # ranking metrics allocate O(K) per evaluated user
MAX_BPR_NEGATIVES = 1000  # bpr gathers batch_size x negatives movie vectors per step: 0.5 GB at 1024 x 1000 x 128
MAX_FOLDS = 100  # split.folds and cross-validate --folds: why, in FOLDS_LIMIT
FOLDS_LIMIT = (f"a fold's test split is 1/K of each user's ratings, so above {MAX_FOLDS} folds most users have fewer "
               "ratings than folds (ML-100K's median user has 65), and each fold of a cross-validation is a whole "
               "dataset and run on disk; 5 or 10 are usual")


def _empty_path(key: str) -> str:
    """What an empty path given for ``key`` is told: an unset shell variable is the likely cause."""
    return "the path is empty (an unset variable?); give a path" + (
        f", or {NULL_PATH_KEYS[key]}" if key in NULL_PATH_KEYS else "")


def _check_consistency(cfg: Config, set_keys: Iterable[str] = (), split: bool = True) -> None:
    """What the keys must hold together; ``set_keys``: those given by --set, an override or updated() (a config
    file's values are not among them: one written by `embedrec config` holds every key). ``split``: False leaves
    the split keys' shares and folds to the caller (:func:`load_unsplit`)."""
    for key in PATH_KEYS:  # '' is no folder: the current one, or "not set", were taken for it (a red team)
        section, name = key.split(".")
        if getattr(getattr(cfg, section), name) == "":
            raise ConfigError(f"config key '{key}': {_empty_path(key)}")
    if split:
        _check_folds(cfg.split, set_keys)
    if split:
        _check_given(cfg, set_keys)
    if split and cfg.split.folds is None and cfg.split.method != "given" and cfg.split.valid + cfg.split.test >= 1.0:
        raise ConfigError("config keys 'split.valid' + 'split.test' must leave data for training "
                          f"(they add up to {cfg.split.valid + cfg.split.test:g}); lower one of them")
    scale = cfg.data.rating_scale
    if scale is not None and (len(scale) != 2 or scale[0] >= scale[1]):
        raise ConfigError(f"config key 'data.rating_scale': expected [min, max] with min < max, got {scale}")
    if scale is not None and not all(abs(v) <= 1e9 for v in scale):  # a red team: 1e308 overflowed float32 ratings
        raise ConfigError(f"config key 'data.rating_scale': {scale} is beyond the ratings embedrec stores (32-bit "
                          "floats, here at most 1e9 either way); give the scale the ratings use, e.g. [1, 5]")
    for key, reader in (("movies_separator", "the movies file's reader"), ("separator", "the ratings reader")):
        sep = getattr(cfg.data, key)
        if sep is not None and sep == "":
            raise ConfigError(f"config key 'data.{key}': must not be empty (use null to auto-detect)")
        if sep is not None and sep.lower() in SEPARATOR_NAMES:  # '\t' as typed in a shell or YAML: a tab
            object.__setattr__(cfg.data, key, sep := SEPARATOR_NAMES[sep.lower()])
        if sep is not None and len(sep) != 1:
            raise ConfigError(f"config key 'data.{key}': {sep[:20]!r} is {len(sep)} characters; {reader} takes "
                              "one character, e.g. ',', ';', '|' or '\\t' for a tab (or null to detect it)")
    sep = cfg.data.separator
    if cfg.data.decimal not in (".", ","):
        raise ConfigError(f"config key 'data.decimal': {cfg.data.decimal[:20]!r}; expected '.' or ',' (the character "
                          "that separates a number's decimals in the file, e.g. ',' for 3,5)")
    if cfg.data.decimal == "," and sep == ",":
        raise ConfigError("config keys 'data.decimal' and 'data.separator' are both ','; a file with decimal commas "
                          "separates its fields with another character: set data.separator (e.g. ';')")
    fmt = cfg.data.timestamp_format
    if fmt is not None and "%" not in fmt:  # a format of no directive matches one text alone: a date mistyped
        raise ConfigError(f"config key 'data.timestamp_format': {fmt[:40]!r} holds no % directive; give the dates' "
                          "strftime format, e.g. '%d.%m.%Y %H:%M' or '%m/%d/%Y' (or null for Unix times and ISO 8601 "
                          "dates)")
    weights = cfg.data.event_weights
    if weights is not None and not weights:
        raise ConfigError("config key 'data.event_weights': the mapping is empty; give each event type of the rating "
                          "column its weight ({view: 1, purchase: 5}), or null to read the column as numbers")
    if weights is not None and any(abs(w) > 1e9 for w in weights.values()):
        top = max(weights, key=lambda k: abs(weights[k]))
        raise ConfigError(f"config key 'data.event_weights': {top[:40]!r}'s weight {weights[top]:g} is beyond the "
                          "ratings embedrec stores (at most 1e9 either way); give a smaller weight")
    if weights is not None and cfg.data.columns.rating is None:
        raise ConfigError("config key 'data.event_weights' weighs the values of the rating column, and "
                          "data.columns.rating is null; name the column of event types "
                          "(«--set data.columns.rating=NAME|data.columns.rating=NAME»)")
    cols = cfg.data.columns
    roles = [(k, v) for k, v in (("user", cols.user), ("movie", cols.movie), ("rating", cols.rating),
                                 ("timestamp", cols.timestamp)) if v is not None]
    for i, (key, col) in enumerate(roles):
        other = next((k for k, c in roles[:i] if c == col), None)
        if other is not None:
            raise ConfigError(f"config keys 'data.columns.{other}' and 'data.columns.{key}' both name the column "
                              f"{col[:60]!r}; each needs a column of its own (null for a rating or timestamp the "
                              "file does not have)")
    for key, value in (("train.threads", cfg.train.threads), ("tune.threads", cfg.tune.threads),
                       ("tune.workers", cfg.tune.workers)):
        if value > MAX_THREADS:
            raise ConfigError(f"config key '{key}': {value} is above the maximum {MAX_THREADS}")
    if any(k > MAX_EVAL_K for k in cfg.train.eval_k):
        raise ConfigError(f"config key 'train.eval_k': {max(cfg.train.eval_k)} is above the maximum {MAX_EVAL_K}")
    if not cfg.train.eval_k or any(k < 1 for k in cfg.train.eval_k):
        raise ConfigError(f"config key 'train.eval_k': expected a non-empty list of positive integers, got "
                          f"{cfg.train.eval_k}")
    if cfg.features.active:
        check_feature_names(cfg.features)
    if cfg.train.als_dims != "auto" and any(not 1 <= d <= MAX_DIM for d in cfg.train.als_dims):
        raise ConfigError(f"config key 'train.als_dims': expected auto or a list of dimensions from 1 to {MAX_DIM}, "
                          f"got {show(cfg.train.als_dims)}")
    prior = cfg.train.als_newuser_prior
    if prior != "auto" and not (isinstance(prior, (int, float)) and 0 <= prior <= 1000) and not (
            isinstance(prior, list) and len(prior) == len(NEWUSER_TOLD) and all(0 <= w <= 1000 for w in prior)):
        bad = ""  # a list's first weight out of range, named (a review: the refusal showed four and hid it)
        if isinstance(prior, list) and len(prior) == len(NEWUSER_TOLD):
            i = next(i for i, w in enumerate(prior) if not 0 <= w <= 1000)
            bad = f": its weight for {NEWUSER_TOLD[i]} told movies is {show(prior[i])}"
        raise ConfigError(f"config key 'train.als_newuser_prior': expected auto, a weight from 0 to 1000, or a list "
                          f"of {len(NEWUSER_TOLD)} such weights (one each for {', '.join(map(str, NEWUSER_TOLD))} "
                          f"told movies), got {show(prior)}{bad}")
    if not cfg.tune.dims or any(d < 1 for d in cfg.tune.dims):
        raise ConfigError(f"config key 'tune.dims': expected a non-empty list of positive integers, got {cfg.tune.dims}")
    loss = cfg.model.loss
    if cfg.model.objective == "explicit" and loss not in ("auto", "mse"):
        raise ConfigError(f"config key 'model.loss': '{loss}' is an implicit loss; use 'mse' (or 'auto') with "
                          "model.objective=explicit, or set model.objective=implicit")
    if cfg.model.objective == "implicit" and loss == "mse":
        raise ConfigError("config key 'model.loss': 'mse' needs model.objective=explicit; use 'als', 'bpr' or 'softmax'")
    if loss == "bpr" and cfg.train.negatives > MAX_BPR_NEGATIVES:
        raise ConfigError(f"config key 'train.negatives': {cfg.train.negatives} is above the maximum "
                          f"{MAX_BPR_NEGATIVES} for model.loss=bpr (each positive's own negatives: a batch holds "
                          "train.batch_size x train.negatives movie vectors); 5-50 is usual")
    from embedrec.metrics import parse_metric  # local: metrics imports nothing heavy

    if cfg.train.metric != "auto":
        try:
            base, _ = parse_metric(cfg.train.metric)
        except ValueError as e:
            raise ConfigError(f"config key 'train.metric': {e}") from None
        if base in ("rmse", "mae") and cfg.model.objective == "implicit":
            raise ConfigError(f"config key 'train.metric': {cfg.train.metric} scores rating predictions, which the "
                              "implicit objective does not make; use a ranking metric (ndcg@10, recall@10, ...) or "
                              "set model.objective=explicit")
    import codecs

    try:
        codecs.lookup(cfg.data.encoding)
        "".encode(cfg.data.encoding)  # rot13, hex, base64: codecs, but not text encodings
    except LookupError:
        raise ConfigError(f"config key 'data.encoding': '{cfg.data.encoding}' is not a text encoding Python knows; "
                          "use e.g. utf-8, latin-1 or cp1252") from None


def _check_given(cfg: Config, set_keys: Iterable[str]) -> None:
    """data.test_source and data.valid_source, read by split.method=given alone, and the split keys that method
    does not read (data/given.py)."""
    sp, files = cfg.split, [k for k in ("test_source", "valid_source") if getattr(cfg.data, k) is not None]
    if files and sp.method != "given":
        raise ConfigError(f"config key 'data.{files[0]}': split.method={sp.method} draws its own split, so the file "
                          "would not be read; add «--set split.method=given|split.method='given'» to hold its rows "
                          f"out as they are (or leave data.{files[0]} null)")
    if sp.method != "given":
        return
    if sp.cold_movies > 0:
        raise ConfigError("config keys 'split.cold_movies' and 'split.method': split.method=given holds out the rows "
                          "the data gives, and split.cold_movies would move every rating of some movies to test "
                          "besides; leave split.cold_movies at 0 with split.method=given")
    if "split.test" in set(set_keys) or sp.test != SplitConfig().test:  # (a file's default value: no choice)
        raise ConfigError("config key 'split.test': split.method=given holds out the rows of data.test_source (or of "
                          "RecBole's NAME.test.inter), not a share of the ratings; leave split.test out")


def _check_folds(sp: SplitConfig, set_keys: Iterable[str]) -> None:
    """split.folds and split.fold, and the split keys they cannot go with (data/split.py: kfold_split)."""
    if sp.folds is None:
        if sp.fold != 0:
            raise ConfigError(f"config key 'split.fold': {sp.fold} picks the test fold of a K-fold split, and "
                              "split.folds is not set; set split.folds too (e.g. split.folds=5), or leave split.fold "
                              "out")
        return
    k = sp.folds
    if k > MAX_FOLDS:
        raise ConfigError(f"config key 'split.folds': {k} is above the maximum {MAX_FOLDS}: {FOLDS_LIMIT}")
    if sp.fold >= k:
        raise ConfigError(f"config key 'split.fold': {sp.fold} is no fold of split.folds={k} (they are numbered 0 to "
                          f"{k - 1}); give a fold from 0 to {k - 1}")
    conflict = kfold_conflict(sp, set_keys)
    if conflict is not None:  # each of kfold_conflict's keys said (a KeyError where one is not: tested)
        raise ConfigError({
            "split.method": f"config key 'split.folds': a K-fold split deals each user's ratings at random into the "
                            f"folds, which split.method={sp.method} does not (" + (
                                "the data gives its test rows" if sp.method == "given" else
                                "a time split holds out one window, its latest ratings") +
                            ", so it has no folds); use split.method=random, or leave split.folds out",
            "split.test": f"config keys 'split.test' and 'split.folds' both set the test share: with split.folds={k} "
                          f"the test split is fold split.fold, 1/{k} of each user's ratings; leave split.test out "
                          f"(or at its default {SplitConfig().test:g} in a config file)",
            "split.cold_movies": "config keys 'split.cold_movies' and 'split.folds': the held-out movies would be test "
                                 "in every fold, so the folds would not partition the ratings; leave "
                                 "split.cold_movies at 0 with split.folds",
        }[conflict])
    check_valid_share(sp.valid, k, "split.folds")


KFOLD_CONFLICTS = ("split.method", "split.test", "split.cold_movies")  # kfold_conflict's keys, in its order


def kfold_conflict(sp: SplitConfig, set_keys: Iterable[str]) -> str | None:
    """The first split key a K-fold split cannot go with, of :data:`KFOLD_CONFLICTS`, or None: split.method other
    than random (a time split holds out one window, so it has no folds), split.test given (the test split is a
    fold, 1/K of each user's ratings; a config file's default value is no choice, ``set_keys``: those an override
    gave), split.cold_movies above 0 (its held-out movies would be test in every fold). The one rule of
    split.folds (:func:`_check_folds`) and of a cross-validation's K (``crossval``), each saying it in its own
    terms; :func:`check_valid_share` is the share's."""
    if sp.method != "random":
        return "split.method"
    if "split.test" in set(set_keys) or sp.test != SplitConfig().test:
        return "split.test"
    if sp.cold_movies > 0:
        return "split.cold_movies"
    return None


def check_valid_share(valid: float, k: int, folds_named: str) -> None:
    """split.valid and a K-fold split's test fold, 1/K of each user's ratings, must leave ratings to train on; the
    one check of ``split.folds`` and of a cross-validation's K (``folds_named``: how the message names K, e.g.
    'split.folds' or '«--folds|folds»')."""
    if valid + 1 / k >= 1.0:
        raise ConfigError(f"config keys 'split.valid' + the test fold (1/{folds_named}, 1/{k}) must leave data for "
                          f"training (they add up to {valid + 1 / k:g}); lower split.valid or raise {folds_named}")
