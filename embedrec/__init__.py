"""embedrec: embedding-based movie recommendation (ingest, train, recommend, tune, export).

    import embedrec as er

    if __name__ == "__main__":   # tune_dims and cross_validate start worker processes, which import this script
        cfg = er.load_config()
        ds = er.ingest("ml-100k", cfg)
        model = er.train(ds, cfg)
        model.save(cfg.run.dir)
        with er.open(cfg.run.dir) as m:   # closed at the end of the block
            print(m.recommend([196, 186], k=10))
            m.export("parquet", "out/embeddings")   # also m.topk_all(path, k=10), m.plot_map(path)
        er.verify_files(cfg.run.dir); er.rebuild_index(cfg.run.dir, cfg); er.tune_dims(cfg, dims=[16, 32])
        er.update_users(cfg.run.dir, "since.csv")   # its users re-solved with ratings made since training

The names are exported lazily (PEP 562): ``import embedrec`` loads no numpy, torch or pandas; each name loads
its module when first used (see embedrec/api.py). Type checkers and IDEs see them through the TYPE_CHECKING
imports below (the package is typed: ``py.typed``).
"""

import logging as _logging

from embedrec.errors import TermsFilter as _TermsFilter

__version__ = "0.1.0"
# log messages name options in library terms (train.lr=0.01, overwrite=True); the CLI swaps this for its own
_logging.getLogger("embedrec").addFilter(_TermsFilter(cli=False))
# a library prints nothing unless its caller configures logging (Python's last-resort handler wrote warnings to
# stderr); the CLI adds its own handler
_logging.getLogger("embedrec").addHandler(_logging.NullHandler())

_API = ("load_config", "ingest", "load_dataset", "train", "open", "tune_dims", "verify_files", "rebuild_index",
        "update_users", "score_lists",
        "Model", "TrainedModel", "Recommendations", "Predictions")
_ERRORS = ("EmbedrecError", "ConfigError", "DataError", "ArtifactError", "OutputRefused", "OutputExists",
           "UsageError", "NotFoundError", "TrainingError", "Interrupted", "Busy")
_WORKFLOWS = ("cross_validate",)  # built over the API's functions (embedrec/crossval.py)
__all__ = [*_API, *_WORKFLOWS, *_ERRORS, "__version__"]


# what static checkers and IDEs read for the lazy names (mypy and pyright take any name TYPE_CHECKING as true); never
# run, and no typing import: `import embedrec` stays as light as it was
TYPE_CHECKING = False
if TYPE_CHECKING:
    from embedrec.api import (  # noqa: F401
        Model,
        Predictions,
        Recommendations,
        TrainedModel,
        ingest,
        load_config,
        load_dataset,
        open,  # noqa: A004
        rebuild_index,
        score_lists,
        train,
        tune_dims,
        update_users,
        verify_files,
    )
    from embedrec.crossval import cross_validate  # noqa: F401
    from embedrec.errors import (  # noqa: F401
        ArtifactError,
        Busy,
        ConfigError,
        DataError,
        EmbedrecError,
        Interrupted,
        NotFoundError,
        OutputExists,
        OutputRefused,
        TrainingError,
        UsageError,
    )
del TYPE_CHECKING


def __getattr__(name: str):
    if name in _API:
        from embedrec import api

        return getattr(api, name)
    if name in _WORKFLOWS:
        from embedrec import crossval

        return getattr(crossval, name)
    if name in _ERRORS:
        from embedrec import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'embedrec' has no attribute {name!r}")


def __dir__() -> list[str]:  # the public names and the subpackages imported so far, not this module's helpers
    return sorted({n for n in globals() if not n.startswith("_")} | set(__all__))
