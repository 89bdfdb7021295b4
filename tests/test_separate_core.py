"""Chunking, diffusion arithmetic and metrics of chorus.separate (no models)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chorus.separate.chunking import crossfade_join, crossfade_weights, fit_length, plan_chunks
from chorus.separate.errors import SeparationError
from chorus.separate.metrics import bss_eval, mel_distance, score_separation, si_sdr, si_sdr_improvement
from chorus.separate.schedule import NoiseSchedule, noised, posterior_std, step_mean


@pytest.mark.parametrize("total,window,overlap", [(1000, 256, 32), (1000, 256, 128), (257, 256, 0), (50, 256, 32),
                                                  (1000, 100, 50)])
def test_chunks_cover_the_signal_and_identity_comes_back(total, window, overlap):
    chunks = plan_chunks(total, window, overlap)
    assert chunks[0].start == 0 and chunks[-1].end == total
    assert all(c.length <= window for c in chunks)
    for a, b in zip(chunks, chunks[1:]):
        assert b.start - a.start == window - overlap and a.end > b.start - 1
    weights = np.zeros(total)
    for chunk, w in zip(chunks, crossfade_weights(chunks)):
        weights[chunk.start:chunk.end] += w
    np.testing.assert_allclose(weights, 1.0, atol=1e-12)
    signal = np.random.default_rng(0).standard_normal((2, total))
    pieces = [signal[:, c.start:c.end] for c in chunks]
    np.testing.assert_allclose(crossfade_join(pieces, chunks, total), signal, atol=1e-6)


def test_crossfade_blends_disagreeing_chunks_smoothly():
    chunks = plan_chunks(300, 200, 100)
    out = crossfade_join([np.zeros(200), np.ones(200)], chunks, 300)
    fade = out[100:200]
    assert out[:100].max() == 0 and out[200:].min() == 1
    assert np.all(np.diff(fade) > 0)  # a monotone hand-over, no step


def test_bad_chunk_plans_and_lengths():
    with pytest.raises(ValueError):
        plan_chunks(100, 10, 6)
    assert fit_length(np.ones(5), 3).tolist() == [1, 1, 1]
    assert fit_length(np.ones(2), 4).tolist() == [1, 1, 0, 0]


def _schedule(steps: int, prediction_type: str = "epsilon") -> NoiseSchedule:
    config = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                  set_alpha_to_one=False, num_train_timesteps=1000, prediction_type=prediction_type)
    return NoiseSchedule.from_scheduler_config(config, steps)


def test_posterior_step_matches_diffusers_ddim_with_eta_one():
    pytest.importorskip("diffusers")
    from diffusers import DDIMScheduler

    schedule = _schedule(10)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    scheduler.set_timesteps(10)
    assert tuple(int(t) for t in scheduler.timesteps) == schedule.timesteps
    gen = torch.Generator().manual_seed(0)
    x, eps, z = (torch.randn(1, 4, 8, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    i = 3
    ab, ab_prev = schedule.alpha_bars[i], schedule.alpha_bars[i + 1]
    x0_hat, eps_hat = schedule.split(eps, x, ab)
    std = posterior_std(ab, ab_prev)
    ours = step_mean(x0_hat, eps_hat, ab_prev, std) + std * z
    theirs = scheduler.step(eps, schedule.timesteps[i], x, eta=1.0, variance_noise=z).prev_sample
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_split_inverts_the_forward_process(prediction_type):
    schedule = _schedule(5, prediction_type)
    gen = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, 3, generator=gen, dtype=torch.float64), torch.randn(2, 3, generator=gen, dtype=torch.float64)
    ab = schedule.alpha_bars[2]
    x_t = noised(x0, eps, ab)
    output = {"epsilon": eps, "sample": x0,
              "v_prediction": math.sqrt(ab) * eps - math.sqrt(1 - ab) * x0}[prediction_type]
    got_x0, got_eps = schedule.split(output, x_t, ab)
    torch.testing.assert_close(got_x0, x0)
    torch.testing.assert_close(got_eps, eps)
    assert schedule.alpha_bars[-1] == 1.0 and posterior_std(schedule.alpha_bars[-2], 1.0) == 0.0


def test_si_sdr_known_values_and_scale_invariance():
    rng = np.random.default_rng(0)
    s, n = rng.standard_normal(16000), rng.standard_normal(16000)
    s, n = s - s.mean(), n - n.mean()
    n -= n.dot(s) / s.dot(s) * s  # orthogonal interference
    n *= np.linalg.norm(s) / np.linalg.norm(n) / math.sqrt(10.0)  # exactly 10 dB below
    assert si_sdr(s, s + n) == pytest.approx(10.0, abs=1e-6)
    assert si_sdr(s, 7.0 * (s + n)) == pytest.approx(10.0, abs=1e-6)
    mix = s + 3 * n
    assert si_sdr_improvement(s, s + n, mix) == pytest.approx(10.0 - si_sdr(s, mix), abs=1e-9)


def test_bss_eval_mel_distance_and_scores():
    rng = np.random.default_rng(1)
    refs = [rng.standard_normal(3000), np.sin(np.arange(3000) * 0.05)]
    ests = [refs[0] + 0.1 * refs[1], refs[1] + 0.1 * refs[0]]
    bss = bss_eval(refs, ests)
    assert all(v > 10 for v in bss["sdr"]) and len(bss["sir"]) == 2
    assert math.isnan(bss_eval([np.zeros(100)], [np.ones(100)])["sdr"][0])
    assert mel_distance(refs[0], refs[0], 8000) == 0.0
    assert mel_distance(refs[0], refs[1], 8000) > 1.0
    scores = score_separation(refs, ests, 8000, mixture=refs[0] + refs[1])
    assert [round(s.si_sdri, 3) for s in scores] == [round(si_sdr_improvement(r, e, refs[0] + refs[1]), 3)
                                                     for r, e in zip(refs, ests)]
    assert math.isnan(scores[0].clap_a)
    with pytest.raises(SeparationError):
        score_separation(refs, ests[:1], 8000)


def test_lengths_must_match_unless_trimmed_and_a_silent_estimate_scores_minus_infinity():
    rng = np.random.default_rng(2)
    refs = [rng.standard_normal(8000), rng.standard_normal(8000)]
    short = [refs[0][:80], refs[1]]  # a 0.01 s estimate of a 1 s reference
    with pytest.raises(SeparationError, match="0.010 s but its reference 1.000 s; pass --trim"):
        score_separation(refs, short, 8000, names=["a", "b"])
    trimmed = score_separation(refs, short, 8000, names=["a", "b"], trim=True)
    assert trimmed[0].si_sdr > 100  # the common part alone: what --trim reports, with the seconds cut
    silent = score_separation(refs, [np.zeros(8000), refs[1] + 0.1 * refs[0]], 8000)
    assert silent[0].si_sdr == -math.inf and silent[0].sdr == -math.inf
    assert silent[1].sdr > 10 and math.isfinite(silent[1].si_sdr)
