"""MERT (Li et al., *MERT: Acoustic Music Understanding Model with Large-Scale
Self-supervised Training*, ICLR 2024), loaded without running hub code.

The hub checkpoints (``m-a-p/MERT-v1-95M``) ship their own modelling code and ask for
``trust_remote_code=True``, i.e. executing code downloaded from the hub. We do not: MERT's
``MERTModel`` subclasses transformers' ``HubertModel`` with the same submodules and weight
names, plus three optional features. This module reads MERT's ``config.json``, refuses
the features ``HubertModel`` lacks, translates the rest into a ``HubertConfig`` and loads
the weights into ``HubertModel``:

- ``feature_extractor_cqt`` (a CQT front end concatenated to the conv features): refused;
- ``deepnorm`` (DeepNet residual scaling): refused;
- ``attention_relax``: MERT applies it only inside its deep-norm layers, and it is a
  per-row shift of the attention logits, which softmax ignores; accepted.

MERT-v1 runs at 24 kHz (75 frames/s) with group norm in its first convolution, so it is
fed equal-length batches.
"""

from __future__ import annotations

from typing import Any

from .hf_common import Entry, load_config_dict, register_names, transformers_class
from .errors import EncoderLoadError, UnsupportedArchitecture
from .speech_ssl import (
    ConvTransformerEncoder,
    SpeechFamily,
    load_speech_encoder,
    random_speech_encoder,
    register_speech_family,
    tiny_config_values,
)

MERT = SpeechFamily(family="mert", model_class="HubertModel", config_class="HubertConfig",
                    model_types=("mert_model", "hubert"))
SAMPLE_RATE = 24_000
MERT_ONLY_KEYS = ("feature_extractor_cqt", "feature_extractor_cqt_bins", "deepnorm", "attention_relax",
                  "auto_map", "architectures", "model_type", "sample_rate")
TINY = tiny_config_values(feat_extract_norm="group")


def hubert_config_from_mert(values: dict[str, Any], what: str = "mert") -> Any:
    """A ``HubertConfig`` equivalent to MERT config ``values``; raises
    :class:`UnsupportedArchitecture` for features HubertModel lacks."""
    if values.get("model_type") not in MERT.model_types:
        raise EncoderLoadError(f"{what}: config holds a {values.get('model_type')!r} model, expected 'mert_model'")
    if values.get("feature_extractor_cqt"):
        raise UnsupportedArchitecture(f"{what}: MERT configs with the CQT front end (feature_extractor_cqt) "
                                      "are not supported")
    if values.get("deepnorm"):
        raise UnsupportedArchitecture(f"{what}: MERT configs with deepnorm residual scaling are not supported")
    kept = {k: v for k, v in values.items() if k not in MERT_ONLY_KEYS}
    kept["conv_pos_batch_norm"] = False
    config = transformers_class("HubertConfig").from_dict(kept)
    config.sample_rate = int(values.get("sample_rate", SAMPLE_RATE))
    return config


def _load(source: str | None, pretrained: bool, what: str) -> ConvTransformerEncoder:
    if source is None:
        return random_speech_encoder(MERT, TINY, sample_rate=SAMPLE_RATE)
    config = hubert_config_from_mert(load_config_dict(source, what), what)
    return load_speech_encoder(MERT, source, pretrained, what, config=config)


register_speech_family(MERT)
register_names("mert", SAMPLE_RATE, _load, [
    Entry("mert-v1-95m", "m-a-p/MERT-v1-95M", "MERT-v1 95M music SSL (20k h), loaded into HubertModel", 13,
          94_371_712, "m-a-p/MERT-v1-95M (CC BY-NC 4.0)"),
    Entry("mert-tiny", None, "tiny random MERT (HuBERT at 24 kHz) for tests", 3, 35_706, "random (tiny test config)"),
])
