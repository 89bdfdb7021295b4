"""Audio encoders behind one interface: every layer, valid-frame masks, a name registry."""

from .base import Encoder, LayerOutputs, lengths_to_mask, masked_mean
from .batching import iter_batches, pad_batch, pooled_features
from .errors import EncoderLoadError, EncoderNotFound
from .registry import EncoderSpec, build_encoder, encoder_specs, get_spec, load_encoder, register_encoder, register_family

__all__ = [
    "Encoder", "LayerOutputs", "lengths_to_mask", "masked_mean",
    "iter_batches", "pad_batch", "pooled_features",
    "EncoderLoadError", "EncoderNotFound", "EncoderSpec", "build_encoder", "encoder_specs",
    "get_spec", "load_encoder", "register_encoder", "register_family",
]
