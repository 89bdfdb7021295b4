"""HuBERT-style masked prediction (Hsu et al., TASLP 2021) for wav2vec2-style encoders.

Targets: every frame of the frozen *starting* model's chosen layer is assigned to its
nearest k-means centroid (k-means fitted once on those features, seeded). The adapted
encoder sees the same audio with spans of its convolutional features replaced by its mask
embedding; a linear projection head maps its last layer to cluster logits, and the loss is
the cross-entropy over the masked frames only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..encoders import Encoder
from ..encoders.speech_ssl import ConvTransformerEncoder
from ..data.clipset import crop_batch
from .masking import frame_mask, span_mask
from .objective import Objective
from .errors import PretrainError
from .transformer_hooks import masked_forward


@dataclass
class KMeansTeacher:
    """The frozen starting encoder, the layer it labels from and ``centroids [clusters,
    features]``."""

    encoder: Encoder
    layer: int
    centroids: Tensor

    @torch.no_grad()
    def labels(self, waveforms: Tensor, lengths: Tensor) -> Tensor:
        """Cluster index of every frame: ``[batch, frames]`` int64."""
        hidden = self.encoder(waveforms, lengths).hidden[self.layer]
        return torch.cdist(hidden, self.centroids.to(hidden.device).unsqueeze(0)).argmin(dim=-1)


@torch.no_grad()
def fit_teacher(encoder: Encoder, layer: int, waveforms: Sequence[np.ndarray], clip_samples: int, clusters: int,
                max_frames: int, batch_size: int, seed: int, device: torch.device) -> KMeansTeacher:
    """k-means (scikit-learn, ``random_state`` from ``seed``) over the valid frames of
    ``encoder``'s ``layer`` on centred ``clip_samples`` crops of ``waveforms``; at most
    ``max_frames`` frames, drawn at random from ``seed``, enter the fit."""
    from sklearn.cluster import KMeans

    encoder.eval()
    rows = []
    for begin in range(0, len(waveforms), batch_size):
        batch, lengths = crop_batch(waveforms, range(begin, min(begin + batch_size, len(waveforms))), clip_samples,
                                    None)
        outputs = encoder(batch.to(device), lengths.to(device))
        rows.append(outputs.hidden[layer][outputs.masks[layer]].float().cpu())
    frames = torch.cat(rows)
    gen = torch.Generator().manual_seed(seed)
    if frames.shape[0] > max_frames:
        frames = frames[torch.randperm(frames.shape[0], generator=gen)[:max_frames]]
    count = min(clusters, frames.shape[0])
    kmeans = KMeans(n_clusters=count, n_init=1, random_state=seed % (2**32)).fit(frames.double().numpy())
    return KMeansTeacher(encoder, layer, torch.from_numpy(kmeans.cluster_centers_).float().to(device))


class MaskedPrediction(Objective):
    """Cross-entropy of k-means targets at masked frames (``probability``/``span``: share of
    frames starting a masked span and span length; HuBERT used 0.8 and 10)."""

    kind = "masked-prediction"

    def __init__(self, encoder: ConvTransformerEncoder, teacher: KMeansTeacher, probability: float = 0.65,
                 span: int = 10):
        super().__init__(encoder)
        model = getattr(encoder, "model", None)
        if not isinstance(encoder, ConvTransformerEncoder) or not hasattr(model, "masked_spec_embed"):
            raise PretrainError(f"{encoder.name}: masked prediction needs a wav2vec2-style transformer with a "
                                f"mask embedding (config mask_time_prob > 0)")
        if not getattr(model.config, "apply_spec_augment", True):
            raise PretrainError(f"{encoder.name}: its config sets apply_spec_augment=False, so no frame can be masked")
        self.probability, self.span = probability, span
        self.teacher = teacher
        self.heads["projection"] = nn.Linear(encoder.layer_dims[-1], teacher.centroids.shape[0])

    def loss(self, waveforms: Tensor, lengths: Tensor, gen: torch.Generator) -> Tensor:
        targets = self.teacher.labels(waveforms, lengths)
        valid = frame_mask(self.encoder, lengths, waveforms.shape[1])
        mask = span_mask(valid, self.probability, self.span).to(waveforms.device)
        hidden = masked_forward(self.encoder, waveforms, lengths, mask).hidden[-1]
        return nn.functional.cross_entropy(self.heads["projection"](hidden[mask]), targets[mask])
