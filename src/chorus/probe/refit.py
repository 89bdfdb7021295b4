"""Refit (BEANS / HEAR practice): the probe chosen on valid — pooling, layer and setting —
trained once more on train + valid, with its standardisation, then tested once.

L-BFGS probes are solved again at the chosen ``C`` (the penalty ``||W||² / (2 C n)``
scales with the larger ``n``). Adam probes (attention, layer-sum, ``solver="adam"``) train
at the chosen learning rate for as many epochs as the chosen probe needed to reach its
kept weights, without early stopping (train + valid is also what they are checked on).
"""

from __future__ import annotations

import math

from .sweep import FeatureReader, MemoryReader, Selection, evaluate, fit_and_select
from .train import TrainConfig


def chosen_pooling(selection: Selection) -> str:
    """The pooling whose best probe has the highest validation metric (ties: the lower
    validation loss, then the earlier pooling)."""
    def key(item: tuple[int, str]) -> tuple[float, float, int]:
        order, pooling = item
        fit = selection.fitted[pooling]
        return -fit.valid[fit.best][selection.metric], float(fit.valid_loss[fit.best]), order

    return min(enumerate(selection.fitted), key=key)[1]


def _refit_config(config: TrainConfig, setting: str, value: float, best_step: int, train_rows: int) -> TrainConfig:
    if setting == "C":
        return config.model_copy(update={"c_values": (value,)})
    steps_per_epoch = math.ceil(train_rows / config.batch_size)
    epochs = max(1, math.ceil(best_step / steps_per_epoch))
    return config.model_copy(update={"learning_rates": (value,), "epochs": epochs, "patience": epochs})


def refit_chosen(selection: Selection, reader: FeatureReader, classes: int, config: TrainConfig,
                 layer_names: list[str], bootstrap: int = 0) -> dict:
    """Refit the probe :func:`chosen_pooling` chose on ``reader``'s train + valid splits and
    test it: pooling, layer, setting (``C`` or ``learning_rate``), its validation metrics
    from the selection, ``train_clips`` (train + valid), ``test`` metrics and, with
    ``bootstrap`` resamples, ``ci95`` (seeded by ``config.seed``)."""
    pooling = chosen_pooling(selection)
    fit = selection.fitted[pooling]
    slot, index = divmod(fit.best, len(fit.values))
    value = fit.values[index]
    layer_sum = pooling == "layer-sum"
    keep = list(range(len(layer_names))) if layer_sum else [slot]
    train, valid, test = (reader.read(split).layers(keep) for split in ("train", "valid", "test"))
    both = train.join(valid)
    refit_config = _refit_config(config, fit.setting, value, int(fit.best_step[fit.best]),
                                 len(train.targets))
    refit = fit_and_select(MemoryReader({"train": both, "valid": both}), selection.kind, classes, (pooling,),
                           refit_config)
    tested = evaluate(refit, test, bootstrap, config.seed)[pooling]
    result = {"pooling": pooling, "layer": "weighted sum" if layer_sum else layer_names[slot],
              fit.setting: value, "valid": fit.valid[fit.best], "train_clips": len(both.targets),
              "test": tested["best"]}
    if fit.setting != "C":
        result["epochs"] = refit_config.epochs
    if "ci95" in tested:
        result["ci95"] = tested["ci95"]
    return result
