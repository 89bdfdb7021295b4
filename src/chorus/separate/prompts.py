"""Text conditioning of AudioLDM and AudioLDM2 UNets, from the pipeline's own encoders.

The two pipelines condition their UNets differently: AudioLDM feeds one CLAP text
embedding per row as ``class_labels``; AudioLDM2 feeds the GPT-2-generated sequence as
``encoder_hidden_states`` and the T5 sequence (with its mask) as ``encoder_hidden_states_1``.
:func:`encode_prompts` hides that: it returns the keyword arguments of a UNet call, one row
per prompt.
"""

from __future__ import annotations

import torch

from .errors import SeparationError

SUPPORTED_PIPELINES = ("AudioLDMPipeline", "AudioLDM2Pipeline")


def pipeline_kind(pipeline) -> str:
    """``"AudioLDMPipeline"`` or ``"AudioLDM2Pipeline"``; anything else is an error."""
    for cls in type(pipeline).__mro__:
        if cls.__name__ in SUPPORTED_PIPELINES:
            return cls.__name__
    raise SeparationError(f"{type(pipeline).__name__} is not supported; separation works with "
                          f"{' and '.join(SUPPORTED_PIPELINES)} pipelines")


@torch.no_grad()
def encode_prompts(pipeline, prompts: list[str]) -> dict[str, torch.Tensor | None]:
    """UNet keyword arguments conditioning on ``prompts`` (batch axis = prompt index)."""
    device = pipeline.unet.device
    if pipeline_kind(pipeline) == "AudioLDMPipeline":
        # AudioLDM exposes prompt encoding only as this method (one CLAP vector per prompt).
        embeds = pipeline._encode_prompt(list(prompts), device, 1, False)
        return {"encoder_hidden_states": None, "class_labels": embeds.to(pipeline.unet.dtype)}
    embeds, mask, generated = pipeline.encode_prompt(list(prompts), device, 1, False)
    return {
        "encoder_hidden_states": generated.to(pipeline.unet.dtype),
        "encoder_hidden_states_1": embeds.to(pipeline.unet.dtype),
        "encoder_attention_mask_1": mask,
    }


def repeat_rows(conditioning: dict[str, torch.Tensor | None], rows: int) -> dict[str, torch.Tensor | None]:
    """The conditioning of a single prompt repeated for ``rows`` latents."""
    return {key: None if value is None else value.expand(rows, *value.shape[1:])
            for key, value in conditioning.items()}
