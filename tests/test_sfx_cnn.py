"""sfx-cnn: its front-end against Essentia and NumPy, the checkpoint mapping against the
original network, safe loading, and padding-exact batching."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from chorus.encoders import EncoderLoadError, build_encoder, load_encoder
from chorus.encoders.packaged import packaged_file
from chorus.encoders.sfx_cnn import read_aisfx_checkpoint
from chorus.encoders.sfx_frontend import HOP, N_FFT, SPEC_MAX, SfxFrontEnd, mel_filterbank
from encoder_checks import assert_padding_exact

DATA = Path(__file__).parent / "data"


def _reference_signal() -> np.ndarray:
    spec = importlib.util.spec_from_file_location("make_reference", DATA / "make_sfx_frontend_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_signal()


def _numpy_logmel(x: np.ndarray, peak_normalise: bool) -> np.ndarray:
    """The recipe written plainly: centred frames, symmetric Hann, power, unit-sum mel, log."""
    x = x.astype(np.float64)
    if peak_normalise and np.abs(x).max() > 0:
        x = x / np.abs(x).max()
    count = int(np.ceil(len(x) / HOP)) + 1
    padded = np.concatenate([np.zeros(N_FFT // 2), x, np.zeros(count * HOP + N_FFT)])
    frames = np.stack([padded[i * HOP:i * HOP + N_FFT] for i in range(count)])
    power = np.abs(np.fft.rfft(frames * np.hanning(N_FFT), axis=-1)) ** 2
    return np.log10(1.0 + 10_000.0 * power @ mel_filterbank().T) / SPEC_MAX


def test_frontend_matches_aisfx_essentia_reference():
    x = _reference_signal()
    expected = np.load(DATA / "sfx_frontend_essentia.npy", allow_pickle=False)
    spec, frames = SfxFrontEnd(peak_normalise=False)(torch.from_numpy(x)[None], torch.tensor([len(x)]))
    assert int(frames[0]) == expected.shape[0] == spec.shape[1]
    np.testing.assert_allclose(spec[0].numpy(), expected, atol=2e-5)


@pytest.mark.parametrize("length", [1, 1024, 1025, 20_000])
def test_frontend_matches_a_numpy_implementation(length):
    rng = np.random.default_rng(length)
    x = (0.3 * rng.standard_normal(length)).astype(np.float32)
    spec, frames = SfxFrontEnd()(torch.from_numpy(x)[None], torch.tensor([length]))
    expected = _numpy_logmel(x, peak_normalise=True)
    assert spec.shape[1] == int(frames[0]) == expected.shape[0]
    np.testing.assert_allclose(spec[0].numpy(), expected, atol=3e-5)


def test_mel_filterbank_is_librosa_norm_1_with_mel_linear_triangles():
    librosa = pytest.importorskip("librosa")
    theirs = librosa.filters.mel(sr=44100, n_fft=2048, n_mels=96, fmin=0.0, fmax=22050.0, htk=True, norm=1)
    ours = mel_filterbank()
    # norm=1 means unit L1 norm per filter (not Slaney's area normalisation): both sum to 1.
    np.testing.assert_allclose(theirs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-9)
    # Essentia's triangles are linear in mel, librosa's in Hz: close, not equal.
    assert np.abs(ours - theirs).max() < 0.005
    assert np.abs(ours - theirs).sum() / np.abs(ours).sum() < 0.01


def test_frontend_is_differentiable_and_level_invariant():
    x = torch.randn(2, 9000, requires_grad=True)
    spec, _ = SfxFrontEnd()(x, torch.tensor([9000, 6000]))
    spec.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    louder, _ = SfxFrontEnd()(3.0 * x.detach(), torch.tensor([9000, 6000]))
    torch.testing.assert_close(louder, spec.detach(), rtol=1e-5, atol=1e-6)


def test_pretrained_weights_reproduce_the_original_network():
    from aisfx.models.cnn2d import EmbeddingNet

    model = load_encoder("sfx-cnn")
    reference = EmbeddingNet("max", 3, 1, 64)
    state = read_aisfx_checkpoint(packaged_file("aisfx", "models", "checkpoint.pth", install_hint=""))
    reference.load_state_dict({k.removeprefix("embedding_net."): v for k, v in state.items()
                               if k.startswith("embedding_net.")})
    reference.eval()
    x = 0.2 * torch.randn(1, 30_000)
    with torch.inference_mode():
        outputs = model(x, torch.tensor([30_000]))
        spec, _ = model.frontend(x, torch.tensor([30_000]))
        expected = reference(spec)
    torch.testing.assert_close(outputs.hidden[-1].amax(dim=1), expected, rtol=1e-5, atol=1e-5)
    assert model.layer_dims == (64, 128, 256, 512) and model.num_parameters == 4_686_144


def test_tiny_clip_alone_and_in_padded_batch_agree_on_every_layer():
    assert_padding_exact(load_encoder("sfx-cnn-tiny"), [44_100, 30_001, 5_000, 2_047])


def test_pretrained_clip_alone_and_in_padded_batch_agree_on_every_layer():
    assert_padding_exact(load_encoder("sfx-cnn"), [20_000, 13_313])


def test_layers_frame_rates_and_architecture_round_trip():
    model = load_encoder("sfx-cnn-tiny")
    with torch.inference_mode():
        outputs = model(torch.zeros(1, 44_100), torch.tensor([44_100]))
    assert [h.shape[1] for h in outputs.hidden] == [22, 11, 5, 5]  # 45 front-end frames
    assert [h.shape[2] for h in outputs.hidden] == [8, 8, 16, 16]
    assert model.frame_rates[0] == pytest.approx(44_100 / 1024 / 2)
    rebuilt = build_encoder(model.architecture())
    assert rebuilt.layer_dims == model.layer_dims and rebuilt.architecture() == model.architecture()
    random = load_encoder("sfx-cnn", pretrained=False, seed=1)
    assert not torch.equal(random.blocks[0].conv1.weight, load_encoder("sfx-cnn").blocks[0].conv1.weight)


def test_safetensors_source_loads_the_same_network(tmp_path):
    from safetensors.torch import save_file

    model = load_encoder("sfx-cnn")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "sfx.safetensors"))
    again = load_encoder("sfx-cnn", source=tmp_path / "sfx.safetensors")
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name


class _Payload:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


def test_checkpoints_are_never_unpickled_beyond_the_allowlist(tmp_path):
    hostile = tmp_path / "hostile.pth"
    torch.save(({"w": torch.zeros(1)}, _Payload()), hostile)
    with pytest.raises(EncoderLoadError, match="hostile.pth"):
        load_encoder("sfx-cnn", source=hostile)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(EncoderLoadError, match="garbage.pth"):
        load_encoder("sfx-cnn", source=garbage)


def test_missing_weight_package_names_the_install_command():
    with pytest.raises(EncoderLoadError, match="pip install"):
        packaged_file("no_such_package_chorus", "w.pth", install_hint="install them with `pip install x`")


def test_cli_lists_the_new_encoders(run_cli):
    result = run_cli("encoders", "--all")
    assert result.exit_code == 0
    for name in ("sfx-cnn", "sfx-cnn-tiny", "crepe-tiny", "crepe-full", "crepe-micro"):
        assert name in result.output
