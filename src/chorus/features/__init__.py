"""Feature extraction shared by ``chorus embed`` and ``chorus probe``: all layers from one
forward pass per batch, stored in a resumable sharded store."""

from .compute import encode_batches, split_outputs
from .embed import embed_manifest, open_embedding_store, read_embeddings
from .extract import ExtractionReport, clip_keys, extract_features, store_header
from .formats import ParquetShards, SafetensorsShards
from .identity import encoder_identity, weights_fingerprint
from .store import FeatureBatch, FeatureStore
from .errors import FeatureStoreBusy, FeatureStoreError, FeatureStoreMismatch, MissingFeatures
from .transforms import ClipTransform, add_noise

__all__ = [
    "encode_batches", "split_outputs", "embed_manifest", "open_embedding_store", "read_embeddings",
    "ExtractionReport", "clip_keys", "extract_features", "store_header", "ParquetShards",
    "SafetensorsShards", "encoder_identity", "weights_fingerprint", "FeatureBatch", "FeatureStore",
    "FeatureStoreBusy", "FeatureStoreError", "FeatureStoreMismatch", "MissingFeatures", "ClipTransform", "add_noise",
]
