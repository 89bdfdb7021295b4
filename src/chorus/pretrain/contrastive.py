"""wav2vec 2.0's contrastive objective (Baevski et al., NeurIPS 2020) through transformers'
``Wav2Vec2ForPreTraining``: spans of the convolutional features are masked, a Gumbel
vector quantizer turns the unmasked features into targets, and each masked transformer
output must pick its own quantized target among ``num_negatives`` distractors from the same
clip (cosine similarity / temperature, cross-entropy), plus the codebook diversity loss.

The quantizer and the two projections are heads, dropped after training. chorus loads
encoders as ``Wav2Vec2Model``; when the checkpoint the encoder came from (``source``)
holds the pre-training heads too (released pre-trained wav2vec 2.0 checkpoints do), they
start from those weights, so the model keeps predicting the targets it was trained on;
otherwise they start random (seeded).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor

from ..encoders.hf_common import load_pretrained, quiet_transformers, transformers_class
from ..encoders.errors import EncoderLoadError
from ..encoders.speech_ssl import ConvTransformerEncoder
from .masking import frame_mask, span_mask
from .objective import Objective
from .errors import PretrainError
from .transformer_hooks import model_inputs


class Contrastive(Objective):
    """Masked contrastive prediction of quantized features for a ``wav2vec2``-family encoder.

    ``probability``/``span``: share of frames starting a masked span, and span length in
    frames (wav2vec 2.0 used 0.65 and 10).
    """

    kind = "contrastive"

    def __init__(self, encoder: ConvTransformerEncoder, probability: float = 0.65, span: int = 10,
                 source: str | None = None):
        super().__init__(encoder)
        if not isinstance(encoder, ConvTransformerEncoder) or encoder.family != "wav2vec2":
            raise PretrainError(f"{encoder.name}: the contrastive objective needs a wav2vec2 encoder "
                                f"(it has transformers' Wav2Vec2ForPreTraining head)")
        self.probability, self.span = probability, span
        wrapper, self.heads_source = _pretraining_model(encoder, source)
        wrapper.wav2vec2 = encoder.model  # train the encoder's own model in place
        for name in ("quantizer", "project_hid", "project_q", "dropout_features"):
            self.heads[name] = getattr(wrapper, name)
        self._wrapper = (wrapper,)  # a tuple: not registered twice as a submodule

    def loss(self, waveforms: Tensor, lengths: Tensor, gen: torch.Generator) -> Tensor:
        """Contrastive + weighted diversity loss per masked frame."""
        from transformers.models.wav2vec2.modeling_wav2vec2 import _sample_negative_indices

        wrapper = self._wrapper[0]
        input_values, attention_mask = model_inputs(self.encoder, waveforms, lengths)
        valid = frame_mask(self.encoder, lengths, waveforms.shape[1])
        mask = span_mask(valid, self.probability, self.span)
        negatives = _sample_negative_indices(tuple(mask.shape), wrapper.config.num_negatives, mask.numpy())
        out = wrapper(input_values, attention_mask=attention_mask, mask_time_indices=mask.to(waveforms.device),
                      sampled_negative_indices=torch.from_numpy(negatives).long().to(waveforms.device))
        return out.loss / mask.sum().clamp_min(1).to(out.loss.device)


def _pretraining_model(encoder: ConvTransformerEncoder, source: str | None) -> tuple[Any, str]:
    """``(Wav2Vec2ForPreTraining, where its heads came from)``: loaded from ``source`` when
    that checkpoint has every pre-training weight, else built random from the encoder's config."""
    config = copy.deepcopy(encoder.model.config)
    if source is not None:
        try:
            return load_pretrained("Wav2Vec2ForPreTraining", source, encoder.name, config=config), source
        except EncoderLoadError:
            pass  # no pre-training heads in that checkpoint (e.g. a Wav2Vec2Model or CTC save)
    with quiet_transformers():
        return transformers_class("Wav2Vec2ForPreTraining")(config), "random"
