"""chorus: probe, fine-tune, share and compose audio foundation models.

The Python API (docs/api.md); each name is the function the CLI runs, imported on first use
so ``import chorus`` stays cheap:

- ``chorus.load_encoder(name, source=None)``: a registered encoder (``chorus embed``, ``probe``...);
- ``chorus.load_model(folder_or_hub_id)``: a classifier whose ``predict(paths)`` returns the
  rows of ``chorus predict --format csv`` as a pandas DataFrame;
- ``chorus.TaskVector``: load, combine and save task vectors (``chorus tv``);
- ``chorus.merge(recipe, out)``: ``chorus merge``;
- ``chorus.probe(encoder, data, out, ...)``: ``chorus probe``.
"""

from importlib import import_module

__version__ = "0.1.0"

_API = {
    "load_encoder": ("chorus.encoders", "load_encoder"),
    "load_model": ("chorus.predict.table", "load_model"),
    "ClassifierModel": ("chorus.model", "ClassifierModel"),
    "TaskVector": ("chorus.taskvec", "TaskVector"),
    "merge": ("chorus.merging.api", "merge"),
    "probe": ("chorus.probe", None),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'chorus' has no attribute {name!r}")
    module, attribute = _API[name]
    value = import_module(module)
    return value if attribute is None else getattr(value, attribute)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
