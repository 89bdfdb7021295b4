"""Reaching inside a wav2vec2-style encoder's transformers model without copying its
front end: capture the inputs it hands the model, or add a time mask to the call.

Both work through forward pre-hooks on ``encoder.model`` (see
:class:`chorus.encoders.speech_ssl.ConvTransformerEncoder`), removed again afterwards.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..encoders import Encoder, LayerOutputs


class _Captured(Exception):
    """Stops the forward pass once the model's inputs are known."""


def model_inputs(encoder: Encoder, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
    """``(input_values [batch, samples], attention_mask [batch, samples] or None)`` exactly as
    ``encoder`` would pass them to its transformers model (normalised, padded to the
    receptive field); the model itself does not run."""
    captured: dict[str, Any] = {}

    def capture(module, args, kwargs):
        captured["input_values"] = args[0] if args else kwargs["input_values"]
        captured["attention_mask"] = kwargs.get("attention_mask")
        raise _Captured

    handle = encoder.model.register_forward_pre_hook(capture, with_kwargs=True)
    try:
        encoder(waveforms, lengths)
    except _Captured:
        pass
    finally:
        handle.remove()
    return captured["input_values"], captured["attention_mask"]


def masked_forward(encoder: Encoder, waveforms: Tensor, lengths: Tensor, mask: Tensor) -> LayerOutputs:
    """``encoder(waveforms, lengths)`` with the transformer frames where ``mask [batch,
    frames]`` is True replaced by the model's learnt mask embedding (``masked_spec_embed``)."""

    def add_mask(module, args, kwargs):
        return args, {**kwargs, "mask_time_indices": mask}

    handle = encoder.model.register_forward_pre_hook(add_mask, with_kwargs=True)
    try:
        return encoder(waveforms, lengths)
    finally:
        handle.remove()
