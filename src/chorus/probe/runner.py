"""``chorus probe``: extract every layer once, sweep probes, select on valid, test, ablate.

Conditions (each a full extract → fit → select → test run):

- ``default``: the encoder as registered (pretrained weights where it has them);
- ``random-init`` (``random_init=True``): the same architecture with random weights;
- ``pitch x<f>`` (``pitch_factors``): every clip frequency-scaled by ``f`` (see
  :class:`chorus.features.ClipTransform`), in all splits.

Noise (``noise_snrs``) is mixed into the TEST clips only, seeded per clip: the probes
trained and selected on clean audio are evaluated on noisy test features, giving a
degradation curve per condition.

Protocols: ``refit`` also trains the probe chosen on valid again on train + valid and
tests it once (:mod:`chorus.probe.refit`); with :class:`chorus.probe.folds.Folds` every
condition runs once per fold on features extracted once; ``bootstrap`` resamples give
each chosen probe's 95 % confidence interval of the test metric.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator

from ..encoders import Encoder, load_encoder
from ..features.transforms import NOISE_KINDS
from ..features import ClipTransform, FeatureStore, SafetensorsShards, extract_features, store_header
from ..features.identity import digest_of
from ..progress import ProgressFactory
from ..schema import FrozenModel
from .models import POOLINGS
from .errors import ProbeTaskError
from .folds import Folds, summarise_folds
from .refit import refit_chosen
from .sweep import SplitData, describe_selection, evaluate, fit_and_select, needs_frames
from .task import PROBE_SPLITS, ProbeTask
from .train import TrainConfig


DEFAULT_POOLINGS = ("mean", "max", "attention")


def resolve_poolings(poolings: tuple[str, ...], encoder: Encoder) -> tuple[str, ...]:
    """``poolings`` with ``native`` replaced by ``encoder.native_pooling``, repeats dropped."""
    resolved = [encoder.resolve_pooling(p) for p in poolings]
    return tuple(dict.fromkeys(resolved))


class ProbeConfig(FrozenModel):
    """Settings of a probe run (see the module docstring for the ablations), validated once
    on construction. ``poolings``: among :data:`chorus.probe.models.POOLINGS` and ``native``
    (the encoder's own)."""

    poolings: tuple[str, ...] = DEFAULT_POOLINGS
    train: TrainConfig = TrainConfig()
    batch_size: int = 8
    dtype: str = "float32"
    random_init: bool = False
    pitch_factors: tuple[float, ...] = ()
    noise_snrs: tuple[float, ...] = ()
    noise_kind: str = "pink"
    refit: bool = False
    """Also refit the probe chosen on valid on train + valid, and test it."""
    bootstrap: int = 1000
    """Stratified bootstrap resamples of each chosen probe's test metric (0: no interval)."""
    seed: int = 0
    device: str = "cpu"

    @model_validator(mode="after")
    def _check(self) -> "ProbeConfig":
        unknown = [p for p in self.poolings if p not in POOLINGS + ("native",)]
        if unknown or not self.poolings:
            raise ValueError(f"poolings must be among {', '.join(POOLINGS)} or native, got {list(self.poolings)}")
        if self.dtype not in ("float32", "float16"):
            raise ValueError(f"the feature cache type must be float32 or float16, not {self.dtype!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.noise_kind not in NOISE_KINDS:
            raise ValueError(f"noise kind must be one of {', '.join(NOISE_KINDS)}, not {self.noise_kind!r}")
        if self.bootstrap < 0:
            raise ValueError(f"bootstrap resamples must be at least 0, got {self.bootstrap}")
        if any(not 0.05 <= factor <= 20 for factor in self.pitch_factors):
            raise ValueError(f"frequency factors must lie in [0.05, 20], got {list(self.pitch_factors)}")
        return self


class StoreReader:
    """Features of a task's splits from a feature store; clips that failed to load are left out.

    ``keys``: clip index -> store key for the clips extracted into this store.
    """

    def __init__(self, task: ProbeTask, store: FeatureStore, keys: dict[int, str], with_frames: bool):
        self.task, self.store, self.keys, self.with_frames = task, store, keys, with_frames

    def read(self, split: str) -> SplitData:
        indices = [i for i in self.task.indices(split) if i in self.keys]
        if not indices:
            raise ProbeTaskError(f"no usable clip in split {split!r} (all failed to load?)")
        loaded = self.store.load([self.keys[i] for i in indices], with_frames=self.with_frames)
        return SplitData(loaded.pooled, self.task.targets(indices), loaded.frames)

    def view(self, task: ProbeTask) -> "StoreReader":
        """The same features split as in ``task`` (the same clips, in the same order)."""
        return StoreReader(task, self.store, self.keys, self.with_frames)


def open_probe_store(encoder: Encoder, cache_root: str | Path, transform: ClipTransform, keep_frames: bool,
                     dtype: str) -> FeatureStore:
    """The cache of ``encoder``'s features after ``transform``: ``cache_root/<digest>``."""
    header = store_header(encoder, transform, dtype)
    shards = SafetensorsShards(keep_frames)
    return FeatureStore(Path(cache_root) / digest_of([header, shards.kind]), header, shards)


def _extract(encoder: Encoder, task: ProbeTask, indices: list[int], cache_root: Path, transform: ClipTransform,
             config: ProbeConfig, failures: dict[str, str], counts: dict[str, int],
             progress: ProgressFactory | None) -> StoreReader:
    keep_frames = needs_frames(config.poolings)
    store = open_probe_store(encoder, cache_root, transform, keep_frames, config.dtype)
    report = extract_features(encoder, [task.clips[i] for i in indices], store, batch_size=config.batch_size,
                              transform=transform, device=config.device, progress=progress)
    for failure in report.failures:
        failures.setdefault(str(failure.clip.path), str(failure.error))
    counts["computed"] += report.computed
    counts["reused"] += report.reused
    keys = {index: key for position, (index, key) in enumerate(zip(indices, report.keys))
            if position not in report.failed_indices}
    return StoreReader(task, store, keys, keep_frames)


def _merge(selected: dict, tested: dict) -> dict:
    """Per pooling: every slot with its validation choice and test metrics; the best."""
    merged = {}
    for pooling, summary in selected.items():
        slots = [{**slot, "test": test} for slot, test in zip(summary["slots"], tested[pooling]["slots"])]
        best = {**summary["best"], "test": tested[pooling]["best"]}
        if "ci95" in tested[pooling]:
            best["ci95"] = tested[pooling]["ci95"]
        merged[pooling] = {**summary, "slots": slots, "best": best}
    return merged


def _fit_and_test(desc: str, reader: StoreReader, noisy: dict[str, StoreReader], config: ProbeConfig,
                  layer_names: list[str], progress: ProgressFactory | None) -> dict:
    """Fit and select on ``reader``'s train/valid, test on its test split (clean and on
    each ``noisy`` reader), refit when configured."""
    task = reader.task
    selection = fit_and_select(reader, task.kind, len(task.labels), config.poolings, config.train, progress,
                               desc=desc)
    tested = evaluate(selection, reader.read("test"), config.bootstrap, config.seed)
    result = {"poolings": _merge(describe_selection(selection, layer_names), tested),
              "noise": {snr: evaluate(selection, noisy_reader.read("test")) for snr, noisy_reader in noisy.items()},
              "clips": {split: len([i for i in task.indices(split) if i in reader.keys]) for split in PROBE_SPLITS}}
    if config.refit:
        result["refit"] = refit_chosen(selection, reader, len(task.labels), config.train, layer_names,
                                       config.bootstrap)
    return result


def probe_condition(name: str, encoder: Encoder, task: ProbeTask, cache_root: Path, config: ProbeConfig,
                    pitch_factor: float, failures: dict[str, str],
                    progress: ProgressFactory | None = None, folds: Folds | None = None) -> dict:
    """Extract, fit and select on train/valid, then test (clean and under noise); with
    ``folds``, once per fold on the same features (:func:`chorus.probe.folds.summarise_folds`).

    ``extraction`` in the result counts clips computed and reused from the cache; ``clips``
    (per run) the usable clips of each split.
    """
    everything = list(range(len(task.clips)))
    transform = ClipTransform(pitch_factor=pitch_factor)
    counts = {"computed": 0, "reused": 0}
    reader = _extract(encoder, task, everything, cache_root, transform, config, failures, counts, progress)
    noisy_clips = everything if folds is not None else task.indices("test")
    noisy = {}
    for snr in config.noise_snrs:
        noise = ClipTransform(pitch_factor=pitch_factor, noise_snr=float(snr), noise_kind=config.noise_kind,
                              noise_seed=config.seed)
        noisy[f"{float(snr):g}"] = _extract(encoder, task, noisy_clips, cache_root, noise, config, failures, counts,
                                            progress)
    layer_names = list(encoder.layer_names)
    if folds is None:
        return {**_fit_and_test(f"{name}: ", reader, noisy, config, layer_names, progress), "extraction": counts}
    runs = []
    for run, fold in enumerate(folds.names):
        fold_task = folds.task(task, run)
        runs.append(_fit_and_test(f"{name} fold {fold}: ", reader.view(fold_task),
                                  {snr: r.view(fold_task) for snr, r in noisy.items()}, config, layer_names, progress))
    return {**summarise_folds(folds, runs), "extraction": counts}


def run_probe(encoder_name: str, task: ProbeTask, cache_root: str | Path, config: ProbeConfig = ProbeConfig(),
              source: str | None = None, progress: ProgressFactory | None = None, folds: Folds | None = None) -> dict:
    """Probe every layer of ``encoder_name`` on ``task`` under every configured condition
    (with ``folds``: cross-validated, ``task`` holding every clip).

    Returns the JSON-serialisable report (see :mod:`chorus.probe.report` for files).
    """
    cache_root = Path(cache_root)
    conditions = [("default", True, 1.0)]
    if config.random_init:
        conditions.append(("random-init", False, 1.0))
    conditions += [(f"pitch x{factor:g}", True, float(factor)) for factor in config.pitch_factors]
    failures: dict[str, str] = dict(task.skipped)
    results, encoder = {}, None
    for name, pretrained, factor in conditions:
        encoder = load_encoder(encoder_name, source=source, pretrained=pretrained, seed=config.seed).to(config.device)
        config = config.model_copy(update={"poolings": resolve_poolings(config.poolings, encoder)})
        results[name] = probe_condition(name, encoder, task, cache_root, config, factor, failures, progress, folds)
    return {
        "encoder": encoder_name,
        "source": source,
        "task": task.kind,
        "metric": task.metric,
        "labels": task.labels,
        "layers": list(encoder.layer_names),
        "layer_dims": [int(d) for d in encoder.layer_dims],
        "learning_rates": list(config.train.learning_rates),
        "c_values": list(config.train.c_values),
        "training": config.train.model_dump(mode="json"),
        "poolings": list(config.poolings),
        "native_pooling": encoder.native_pooling,
        "clips": ({split: len(task.indices(split)) for split in PROBE_SPLITS} if folds is None
                  else {f"fold {fold}": folds.of_clip.count(fold) for fold in folds.names}),
        "refit": config.refit,
        "folds": None if folds is None else list(folds.names),
        "bootstrap": config.bootstrap,
        "failures": [{"path": path, "error": error} for path, error in sorted(failures.items())],
        "noise_snrs": [float(s) for s in config.noise_snrs],
        "noise_kind": config.noise_kind,
        "conditions": results,
    }
