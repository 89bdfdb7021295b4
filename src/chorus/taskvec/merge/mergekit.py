"""mergekit-style recipes read as chorus recipes, adapted to task vectors.

mergekit (https://github.com/arcee-ai/mergekit) describes a merge with the keys
``merge_method``, ``models: [{model, parameters: {weight, density}}]``, ``base_model``,
``parameters`` (method-level) and ``dtype``. :func:`from_mergekit` renames them to chorus's
recipe fields, so both formats validate into the same :class:`~chorus.taskvec.merge.Recipe`:

=====================================  ===========================================
mergekit                               chorus
=====================================  ===========================================
``merge_method``                       ``method`` (``dare_ties`` → ``dare`` with ``ties: true``, ...)
``models[i].model``                    ``vectors[i].path`` (a task-vector folder)
``models[i].parameters.weight``        ``vectors[i].weight``
``models[i].parameters.density``       ``vectors[i].density``
``base_model``                         ``base`` (registered encoder, model folder, .safetensors)
``parameters.lambda``                  ``lambda``
``parameters.*``                       ``params.*``
``dtype``                              ``dtype`` (of the written encoder)
=====================================  ===========================================

A ``models`` entry naming ``base_model`` itself (mergekit lists the base among the models)
is skipped: the base has no task vector. ``parameters.int8_mask`` (a memory saving in
mergekit) is accepted and has no effect; ``parameters.normalize: true`` is accepted for
methods with TIES' consensus, whose disjoint mean already divides by the agreeing weights.
Values must be numbers: mergekit's gradients (lists) and per-layer filters are refused.
Problems are reported under the mergekit key names (:func:`mergekit_location`).
"""

from __future__ import annotations

from typing import Any

MERGEKIT_KEYS = ("merge_method", "models", "base_model", "parameters")
"""Keys that mark a recipe as mergekit-style (``dtype`` is a key of both formats)."""

METHOD_NAMES = {"linear": ("mean", {}), "dare_ties": ("dare", {"ties": True}), "dare_linear": ("dare", {"ties": False}),
                "breadcrumbs": ("breadcrumbs", {"ties": False}), "breadcrumbs_ties": ("breadcrumbs", {"ties": True}),
                "della": ("della", {"ties": True}), "della_linear": ("della", {"ties": False})}
"""mergekit method names whose chorus method differs, with the parameters they imply;
other names (``ties``, ``task_arithmetic``, ...) are chorus's own."""

_CHORUS_KEYS = {"merge_method": "method", "models": "vectors", "base_model": "base", "parameters": "params"}

_CONSENSUS = {"ties", "dare_ties", "breadcrumbs_ties", "della"}
"""mergekit methods with TIES' sign consensus (normalized by the agreeing weights)."""


def is_mergekit(data: dict) -> bool:
    """Whether a recipe mapping uses mergekit's key names."""
    return any(key in data for key in MERGEKIT_KEYS)


def from_mergekit(data: dict) -> tuple[dict, list[int]]:
    """The chorus recipe mapping of a mergekit-style one, and for each chorus vector the
    index of the ``models`` entry it came from. Values are moved, not checked: the recipe's
    validation reports every problem."""
    taken = [key for key in MERGEKIT_KEYS if _CHORUS_KEYS[key] in data]  # both spellings: reported as unknown
    result = {key: value for key, value in data.items() if key not in MERGEKIT_KEYS or key in taken}
    data = {key: value for key, value in data.items() if key not in taken}
    name = data.get("merge_method")
    method, implied = METHOD_NAMES.get(name, (name, {})) if isinstance(name, str) else (name, {})
    if "merge_method" in data:
        result["method"] = method
    params = data.get("parameters", {})
    if isinstance(params, dict):
        params = dict(params)
        if "lambda" in params:
            result["lambda"] = params.pop("lambda")
        if isinstance(params.get("int8_mask"), bool):
            params.pop("int8_mask")
        if params.get("normalize") is True and isinstance(name, str) and name in _CONSENSUS:
            params.pop("normalize")
        params = {**params, **implied}
    if params:
        result["params"] = params
    if "base_model" in data:
        result["base"] = data["base_model"]
    models, kept = data.get("models"), []
    if isinstance(models, list):
        kept = [i for i, entry in enumerate(models) if not _is_base(entry, data.get("base_model"))]
        result["vectors"] = [_vector(models[i]) for i in kept]
    elif "models" in data:
        result["vectors"] = models
    return result, kept


def _is_base(entry: Any, base: Any) -> bool:
    return isinstance(entry, dict) and base is not None and entry.get("model") == base and not entry.get("parameters")


def _vector(entry: Any) -> Any:
    """One ``models`` entry as a chorus vector: ``model`` → ``path``, ``parameters`` flattened."""
    if isinstance(entry, str):
        return {"path": entry}
    if not isinstance(entry, dict):
        return entry
    vector = {key: value for key, value in entry.items() if key not in ("model", "parameters")}
    if "model" in entry:
        vector["path"] = entry["model"]
    parameters = entry.get("parameters", {})
    if isinstance(parameters, dict):
        vector.update(parameters)
    else:
        vector["parameters"] = parameters
    return vector


_TOP = {"method": "merge_method", "base": "base_model", "params": "parameters", "vectors": "models"}
_VECTOR = {"path": ("model",), "weight": ("parameters", "weight"), "density": ("parameters", "density")}


def mergekit_location(loc: tuple, kept: list[int]) -> tuple:
    """A problem's location in chorus's fields (``vectors.1.density``) under the mergekit
    key names it came from (``models.2.parameters.density``)."""
    if not loc:
        return loc
    head, rest = loc[0], tuple(loc[1:])
    if head == "lambda":
        return ("parameters", "lambda", *rest)
    if head == "vectors" and rest and isinstance(rest[0], int) and rest[0] < len(kept):
        index, field = kept[rest[0]], rest[1:]
        if field and field[0] in _VECTOR:
            return ("models", index, *_VECTOR[field[0]], *field[1:])
        return ("models", index, *field)
    return (_TOP.get(head, head), *rest)
