"""Predictions as a pandas DataFrame, through the same run as ``chorus predict --format csv``.

:func:`predict_table` runs :func:`~chorus.predict.predict` into a temporary folder with the
``csv`` format and reads back its combined table, so the rows (``path, start, end, label,
score``: one per merged detection, times in seconds, six decimals) are the CLI's.
:class:`Model` is a :class:`~chorus.model.ClassifierModel` with a ``predict`` method (what
:func:`chorus.load_model` returns).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

from ..model import ClassifierModel
from .outputs import CSV_COLUMNS
from .recordings import predict
from .settings import PredictSettings


def read_predictions(path: Path | None):
    """The combined CSV table at ``path`` as a DataFrame (labels and paths kept as text;
    no file: an empty table with the CSV columns)."""
    import pandas as pd

    if path is None:
        return pd.DataFrame({column: pd.Series(dtype=float if column in ("start", "end", "score") else object)
                             for column in CSV_COLUMNS})
    return pd.read_csv(path, dtype={"path": str, "label": str}, keep_default_na=False)


def predict_table(model: str | Path, paths: Sequence[str | Path], *, device: str = "auto", workers: int | None = 1,
                  **settings: Any):
    """Detections of the model folder (or Hub id) ``model`` in ``paths`` (files or folders)
    as a DataFrame; ``settings``: the fields of :class:`PredictSettings` (``window``,
    ``hop``, ``threshold``, ``class_thresholds``, ``batch_size``...). Recordings that fail,
    and recordings scored but not fully usable, are reported as warnings."""
    settings = PredictSettings(**{**settings, "format": "csv"})
    with tempfile.TemporaryDirectory(prefix="chorus-predict-") as out:
        report = predict(model, paths, out, settings, workers=workers, device=device)
        for problem in [failure.error for failure in report.failures] + report.warnings:
            warnings.warn(problem, stacklevel=2)
        return read_predictions(report.combined)


class Model(ClassifierModel):
    """A :class:`~chorus.model.ClassifierModel` that predicts over recordings into a DataFrame."""

    def predict(self, paths: Sequence[str | Path], **settings: Any):
        """``chorus predict --format csv`` of this model's current weights over ``paths`` as a
        pandas DataFrame (``path, start, end, label, score``). The model is saved to a
        temporary folder first (the prediction engine loads it from there); ``settings``:
        see :func:`predict_table`."""
        with tempfile.TemporaryDirectory(prefix="chorus-model-") as folder:
            return predict_table(self.save_pretrained(folder), paths, **settings)


def load_model(source: str | Path, *, revision: str | None = None) -> Model:
    """The model in folder ``source`` or Hub repo ``owner/name`` (``revision``: branch, tag
    or commit), every file validated, ready to :meth:`Model.predict`."""
    return Model.from_pretrained(source, revision=revision)
