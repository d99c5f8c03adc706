"""embedrec: embedding-based movie recommendation (ingest, train, recommend, tune, export).

    import embedrec as er
    cfg = er.load_config()
    ds = er.ingest("ml-100k", cfg)
    model = er.train(ds, cfg)
    model.save(cfg.run.dir)
    er.open(cfg.run.dir).recommend([196, 186], k=10)

The names are exported lazily (PEP 562): ``import embedrec`` loads no numpy, torch or pandas; each name loads
its module when first used (see embedrec/api.py).
"""

import logging
import sys
import types

from embedrec.errors import TermsFilter as _TermsFilter

__version__ = "0.1.0"
# log messages name options in library terms (train.lr=0.01, overwrite=True); the CLI swaps this for its own
logging.getLogger("embedrec").addFilter(_TermsFilter(cli=False))
# a library prints nothing unless its caller configures logging (Python's last-resort handler wrote warnings to
# stderr); the CLI adds its own handler
logging.getLogger("embedrec").addHandler(logging.NullHandler())

_API = ("load_config", "ingest", "train", "open", "Model", "TrainedModel", "Recommendations", "Predictions")
_ERRORS = ("EmbedrecError", "ConfigError", "DataError", "ArtifactError", "UsageError", "NotFoundError",
           "TrainingError", "Interrupted")
__all__ = [*_API, *_ERRORS, "__version__"]


def __getattr__(name: str):
    if name in _API:
        from embedrec import api

        if name in _CALLABLE_MODULES:  # er.train / er.ingest: the submodule, made callable (below)
            import importlib

            return importlib.import_module(f"embedrec.{name}")
        return getattr(api, name)
    if name in _ERRORS:
        from embedrec import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'embedrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# ``er.train(ds, cfg)`` and ``er.ingest(source, cfg)`` share their names with the package embedrec/train/ and
# the module embedrec/ingest.py, and importing a submodule sets it as an attribute of the package, replacing any function of
# that name. So the submodules themselves are made callable: ``embedrec.train`` stays the package
# (``embedrec.train.fit.fit``, ``import embedrec.train.fit as T`` and mock.patch work) and calling it calls api.train.
class _CallableModule(types.ModuleType):
    """help(), inspect.signature() and a notebook's Shift-Tab on er.train / er.ingest show the function's own
    docstring and signature (api.train, api.ingest), not the package's."""

    _function = ""

    def _target(self):
        from embedrec import api

        return getattr(api, self._function)

    def __call__(self, *args, **kwargs):
        return self._target()(*args, **kwargs)

    @property
    def __doc__(self):
        return self._target().__doc__

    @__doc__.setter
    def __doc__(self, value):  # the import system sets a module's docstring; the function's is shown instead
        pass

    @property
    def __signature__(self):
        import inspect

        return inspect.signature(self._target())


class _CallableTrain(_CallableModule):
    __doc__ = _CallableModule.__dict__["__doc__"]  # a class's own __doc__ (None) would hide the property
    _function = "train"


class _CallableIngest(_CallableModule):
    __doc__ = _CallableModule.__dict__["__doc__"]
    _function = "ingest"


_CALLABLE_MODULES = {"train": _CallableTrain, "ingest": _CallableIngest}


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        cls = _CALLABLE_MODULES.get(name)
        if cls is not None and type(value) is types.ModuleType:
            value.__class__ = cls
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
