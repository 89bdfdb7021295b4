"""Audio encoders behind one interface: every layer, valid-frame masks, a name registry."""

from .base import FRAME_POOLINGS, Encoder, LayerOutputs, lengths_to_mask, masked_max, masked_mean, pool_frames
from .batching import iter_batches, pad_batch, pooled_features
from .errors import EncoderLoadError, EncoderNotFound
from .registry import EncoderSpec, build_encoder, encoder_specs, get_spec, load_encoder, register_encoder, register_family

__all__ = [
    "FRAME_POOLINGS", "Encoder", "LayerOutputs", "lengths_to_mask", "masked_max", "masked_mean", "pool_frames",
    "iter_batches", "pad_batch", "pooled_features",
    "EncoderLoadError", "EncoderNotFound", "EncoderSpec", "build_encoder", "encoder_specs",
    "get_spec", "load_encoder", "register_encoder", "register_family",
]
