"""Running a classifier over in-memory clips, in clip order."""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.clipset import ClipSet, crop_batch
from .classifier import ClassifierModel


def predict_clips(model: ClassifierModel, clips: ClipSet, max_samples: int | None, batch_size: int,
                  device: torch.device, amp: torch.dtype | None = None, features: bool = False) -> Tensor:
    """Logits ``[clips, classes]`` (or pooled ``features [clips, features]``), float32 on the
    CPU, in clip order, of whole clips (clips longer than ``max_samples``, unless None: a centred crop);
    the model is put in eval mode."""
    model.eval()
    function = model.features if features else model
    rows = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
        for begin in range(0, len(clips), batch_size):
            indices = list(range(begin, min(begin + batch_size, len(clips))))
            longest = max(clips.waveforms[i].shape[0] for i in indices)
            width = longest if max_samples is None else min(max_samples, longest)
            waveforms, lengths = crop_batch(clips.waveforms, indices, width, None)
            rows.append(function(waveforms.to(device), lengths.to(device)).float().cpu())
    return torch.cat(rows)
