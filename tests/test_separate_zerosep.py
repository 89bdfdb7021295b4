"""ZeroSep on tiny random AudioLDM and AudioLDM2 pipelines (offline)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from chorus.separate.errors import SeparationError  # noqa: E402
from chorus.separate.prompts import encode_prompts  # noqa: E402
from chorus.separate.zerosep import ZeroSep, ZeroSepConfig  # noqa: E402
from tiny_diffusers import tiny_audioldm, tiny_audioldm2  # noqa: E402

STEPS = 3


@pytest.fixture(scope="module", params=["audioldm", "audioldm2"])
def zerosep(request):
    return ZeroSep(tiny_audioldm() if request.param == "audioldm" else tiny_audioldm2())


@pytest.fixture
def unet_rows(zerosep):
    """Rows (latents) passed through the UNet, one entry per forward call, via a hook."""
    rows: list[int] = []
    handle = zerosep.pipeline.unet.register_forward_pre_hook(lambda module, args: rows.append(args[0].shape[0]))
    yield rows
    handle.remove()


def _clip(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * noise).astype(np.float32)


def _latent(zerosep: ZeroSep) -> torch.Tensor:
    codec = zerosep.codec
    return codec.encode(torch.from_numpy(_clip(0.1, codec.sample_rate)))


def test_ddpm_inversion_reconstructs_x1_and_x0(zerosep):
    uncond = encode_prompts(zerosep.pipeline, [""])
    x0 = _latent(zerosep)
    states = []
    inversion, latents = zerosep.separate_latent(x0, uncond, uncond, ZeroSepConfig(steps=STEPS),
                                                 on_reverse_step=lambda i, x: states.append(x))
    # Denoising with the inversion's own (empty) prompt lands on x_1 after S - 1 steps ...
    x1 = inversion.path[-1]
    assert torch.abs(states[STEPS - 2] - x1).max() < 1e-4
    assert torch.abs(x1).max() > 0.1  # a real latent, not a trivially zero one
    # ... and on x_0 itself after the last: its residual x_0 - x̂_0 is recorded and added.
    assert torch.abs(latents[0] - x0[0]).max() <= 1e-5
    assert torch.abs(inversion.noise[-1]).max() > 1e-3  # the model's own x̂_0 is not x_0


def test_omega_zero_ends_on_x0_for_every_prompt(zerosep):
    cond = encode_prompts(zerosep.pipeline, ["dog barking", "human speech"])
    uncond = encode_prompts(zerosep.pipeline, [""])
    x0 = _latent(zerosep)
    _, latents = zerosep.separate_latent(x0, cond, uncond, ZeroSepConfig(steps=STEPS, omega=0.0))
    assert torch.abs(latents - x0).max() <= 1e-5


def test_ddim_path_is_unchanged_by_the_last_step_residual(zerosep):
    """DDIM keeps no noise maps: its reverse ends on the model's x̂_0 as before (the
    deterministic step with σ = 0), not on x_0."""
    from chorus.separate.schedule import step_mean

    uncond = encode_prompts(zerosep.pipeline, [""])
    x0 = _latent(zerosep)
    states = []
    inversion, latents = zerosep.separate_latent(x0, uncond, uncond, ZeroSepConfig(steps=STEPS, inversion="ddim"),
                                                 on_reverse_step=lambda i, x: states.append(x))
    assert inversion.noise is None
    schedule = zerosep.schedule(STEPS)
    x = states[STEPS - 2]
    x0_hat, eps = schedule.split(zerosep.unet(x, schedule.timesteps[-1], uncond), x, schedule.alpha_bars[-2])
    assert torch.equal(latents, step_mean(x0_hat, eps, schedule.alpha_bars[-1], 0.0))
    assert torch.abs(latents - x0).max() > 1e-4


def test_omega_zero_follows_the_mixture_reconstruction_path(zerosep, unet_rows):
    cond = encode_prompts(zerosep.pipeline, ["dog barking", "human speech"])
    uncond = encode_prompts(zerosep.pipeline, [""])
    states = []
    inversion, latents = zerosep.separate_latent(_latent(zerosep), cond, uncond, ZeroSepConfig(steps=STEPS, omega=0.0),
                                                 on_reverse_step=lambda i, x: states.append(x))
    for i in range(STEPS - 1):
        assert torch.abs(states[i] - inversion.path[i + 1]).max() < 1e-4
    assert torch.equal(latents[0], latents[1])  # the prompt never entered
    assert sum(unet_rows) == STEPS + 2 * STEPS


def test_prompts_change_the_result_at_omega_one(zerosep):
    cond = encode_prompts(zerosep.pipeline, ["dog barking", "human speech"])
    uncond = encode_prompts(zerosep.pipeline, [""])
    _, latents = zerosep.separate_latent(_latent(zerosep), cond, uncond, ZeroSepConfig(steps=STEPS))
    assert not torch.allclose(latents[0], latents[1])


@pytest.mark.parametrize("prompts,inversion", [(["dog barking"], "ddpm"), (["dog barking", "speech", "rain"], "ddpm"),
                                               (["dog barking", "human speech"], "ddim")])
def test_unet_calls_are_n_plus_one_times_steps(zerosep, unet_rows, prompts, inversion):
    rate = zerosep.codec.sample_rate
    clip = _clip(0.1, rate)  # shorter than the tiny model's window: one chunk
    result = zerosep.separate(clip, rate, prompts, ZeroSepConfig(steps=STEPS, inversion=inversion))
    assert result.chunks == 1
    assert sum(unet_rows) == (len(prompts) + 1) * STEPS == result.evaluations
    # one batched call for the shared inversion's steps, one per reverse step for all prompts
    assert len(unet_rows) == 2 * STEPS


@pytest.mark.parametrize("omega,schedule,per_source", [(0.5, "constant", 2 * STEPS), (1.0, "linear", 2 * STEPS - 2)])
def test_unet_calls_with_guidance(zerosep, unet_rows, omega, schedule, per_source):
    rate = zerosep.codec.sample_rate
    result = zerosep.separate(_clip(0.1, rate), rate, ["a", "b"],
                              ZeroSepConfig(steps=STEPS, omega=omega, omega_schedule=schedule))
    assert sum(unet_rows) == STEPS + 2 * per_source == result.evaluations


def test_output_length_and_rate_match_the_input_across_chunks(zerosep, unet_rows):
    rate = 22050 if type(zerosep.pipeline).__name__ == "AudioLDM2Pipeline" else 8000
    clip = _clip(0.3, rate)  # 0.3 s > the tiny window of 0.128 s
    result = zerosep.separate(clip, rate, ["a", "b"], ZeroSepConfig(steps=2))
    assert result.sample_rate == rate
    assert result.chunks == 3
    assert [s.shape for s in result.sources] == [clip.shape, clip.shape]
    assert all(s.dtype == np.float32 and np.isfinite(s).all() and np.abs(s).max() > 0 for s in result.sources)
    assert sum(unet_rows) == result.chunks * 3 * 2


def test_same_seed_same_bytes(zerosep):
    rate = 16000
    clip = _clip(0.1, rate)
    first = zerosep.separate(clip, rate, ["a"], ZeroSepConfig(steps=1, seed=3)).sources[0]
    again = zerosep.separate(clip, rate, ["a"], ZeroSepConfig(steps=1, seed=3)).sources[0]
    other = zerosep.separate(clip, rate, ["a"], ZeroSepConfig(steps=1, seed=4)).sources[0]
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()


def test_bad_settings_are_typed_errors(zerosep):
    with pytest.raises(SeparationError, match="omega"):
        ZeroSepConfig(omega=-1)
    with pytest.raises(SeparationError, match="inversion"):
        ZeroSepConfig(inversion="null-text")
    with pytest.raises(SeparationError, match="prompt"):
        zerosep.separate(_clip(0.1, 16000), 16000, [])


def test_unsupported_pipeline_is_rejected():
    with pytest.raises(SeparationError, match="not supported"):
        ZeroSep(object())
