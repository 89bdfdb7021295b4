"""The one training core: accumulation, clipping, schedules set per optimizer step, EMA,
and the shared checkpoint (round trip, byte-exact continuation, refusal of damaged files)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from chorus.errors import ChorusError
from chorus.tensorfile import IntegrityError, NotSafetensorsError
from chorus.train.checkpoint import CHECKPOINT_DIR, load_checkpoint, save_checkpoint
from chorus.train.errors import CheckpointError
from chorus.train.ema import WeightEMA
from chorus.train.schedule import MultiStage, Stage, WarmupCosine, multi_stage_lr, warmup_cosine
from chorus.train.step import TrainStep, parameter_groups


class Tiny(nn.Module):
    """An encoder and a head, named as the trainings name them."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(3, 4)
        self.heads = nn.ModuleList([nn.Linear(4, 2)])

    def forward(self, x):
        return self.heads[0](torch.tanh(self.encoder(x)))


def tiny(seed: int = 0) -> Tiny:
    torch.manual_seed(seed)
    return Tiny()


def mse(model):
    return lambda x, y: (model(x) - y).square().mean()


def data(rows: int = 8):
    gen = torch.Generator().manual_seed(1)
    return torch.randn(rows, 3, generator=gen), torch.randn(rows, 2, generator=gen)


def test_accumulated_micro_batches_match_one_big_batch():
    x, y = data()
    whole, halves = tiny(), tiny()
    step = TrainStep(torch.optim.SGD(whole.parameters(), lr=0.1), mse(whole), lambda s: 1.0, max_grad_norm=None)
    accumulated = TrainStep(torch.optim.SGD(halves.parameters(), lr=0.1), mse(halves), lambda s: 1.0,
                            accumulate=2, max_grad_norm=None)
    for group in step.optimizer.param_groups + accumulated.optimizer.param_groups:
        group["peak_lr"] = 0.1
    step(x, y)
    accumulated(x[:4], y[:4])
    assert accumulated.step == 0 and torch.equal(halves.encoder.weight, tiny().encoder.weight)  # not yet
    accumulated(x[4:], y[4:])
    assert step.step == accumulated.step == 1
    for a, b in zip(whole.parameters(), halves.parameters()):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=0)
    assert not torch.equal(whole.encoder.weight, tiny().encoder.weight)


def test_a_partial_accumulation_is_applied_by_update():
    x, y = data()
    model = tiny()
    step = TrainStep(torch.optim.SGD([{"params": model.parameters(), "peak_lr": 0.1}], lr=0.1), mse(model),
                     lambda s: 1.0, accumulate=4)
    step(x, y)
    step.update()
    step.update()  # nothing pending: no second step
    assert step.step == 1 and not torch.equal(model.encoder.weight, tiny().encoder.weight)


@pytest.mark.parametrize("max_norm", [None, 0.5])
def test_gradients_are_clipped_to_the_maximum_norm(max_norm):
    weight = nn.Parameter(torch.zeros(4))
    direction = torch.tensor([6.0, 0.0, 8.0, 0.0])  # gradient of norm 10
    step = TrainStep(torch.optim.SGD([{"params": [weight], "peak_lr": 1.0}], lr=1.0),
                     lambda: (weight * direction).sum(), lambda s: 1.0, max_grad_norm=max_norm)
    step()
    expected = 10.0 if max_norm is None else max_norm
    assert float(weight.detach().norm()) == pytest.approx(expected, rel=1e-6)
    torch.testing.assert_close(weight, -direction / 10.0 * expected)


def test_the_schedule_sets_every_group_at_each_optimizer_step_across_stage_boundaries():
    stages = (Stage(steps=3, peak_lr=1e-2, warmup_steps=1, floor=0.1), Stage(steps=4, peak_lr=4e-3, warmup_steps=2,
                                                                             floor=0.5))
    model = tiny()
    optimizer = torch.optim.AdamW(parameter_groups(model, 1.0, 10.0, 0.0, key="lr_scale"))
    seen = []
    step = TrainStep(optimizer, lambda x, y: mse(model)(x, y), MultiStage(stages),
                     after_update=lambda s: seen.append({g["lr_scale"]: g["lr"] for g in optimizer.param_groups}))
    x, y = data()
    for _ in range(9):
        step(x, y)
    encoder = [row[1.0] for row in seen]
    assert encoder == [multi_stage_lr(s, stages) for s in range(9)]
    assert [row[10.0] for row in seen] == [10.0 * lr for lr in encoder]
    assert encoder[0] == 1e-2 and encoder[2] > 1e-3  # stage 1: warmed up, decaying towards its floor
    assert encoder[3] == 4e-3 / 2 and encoder[4] == 4e-3  # stage 2 re-warms from its first step
    assert encoder[7] == encoder[8] == 0.5 * 4e-3  # past the end: the last stage's floor


def test_warmup_cosine_object_multiplies_each_groups_absolute_peak():
    schedule = WarmupCosine.from_fraction(total_steps=10, warmup_fraction=0.2, floor=0.1)
    assert schedule.warmup_steps == 2
    assert [schedule(s) for s in range(12)] == [warmup_cosine(s, 10, 2, 0.1) for s in range(12)]
    assert schedule.group_lr({"peak_lr": 3e-3}, 0) == 3e-3 * 0.5
    assert schedule.group_lr({"peak_lr": 3e-3}, 10) == 3e-3 * 0.1
    with pytest.raises(ValueError):
        WarmupCosine(total_steps=4, warmup_steps=5)


def test_weight_ema_follows_the_trained_weights_with_a_warming_decay():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    ema = WeightEMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(0)  # decay min(0.9, 1/10) = 0.1: moves 90 % of the way
    torch.testing.assert_close(ema.model.weight, torch.full((1, 2), 0.9))
    ema.update(1000)  # decay 0.9: a tenth of the remaining 0.1
    torch.testing.assert_close(ema.model.weight, torch.full((1, 2), 0.91))
    assert not ema.model.weight.requires_grad


def run(model: Tiny, steps: int, out=None, resume_from=None, gen_seed: int = 5):
    """Train ``model`` for ``steps`` optimizer steps on batches drawn from a seeded
    generator, checkpointing into ``out`` after each; resume from ``resume_from``."""
    optimizer = torch.optim.AdamW(parameter_groups(model, 1e-2, 1e-1, 0.01))
    ema = WeightEMA(model, 0.5)
    gen = torch.Generator().manual_seed(gen_seed)

    def loss(x, y):
        return mse(model)(x, y)

    step = TrainStep(optimizer, loss, WarmupCosine(6, 2, 0.1), accumulate=2, after_update=ema.update)
    if resume_from is not None:
        restored = load_checkpoint(resume_from, model, step, {"batches": gen})
        ema.model.load_state_dict(restored.tensors["ema"])
    while step.step < steps:
        step(torch.randn(4, 3, generator=gen), torch.randn(4, 2, generator=gen))
        if out is not None and step.pending == 0:
            save_checkpoint(out, model, step, {"losses": [step.step]}, {"ema": ema.model.state_dict()},
                            {"batches": gen})
    return model, ema, step


def test_checkpoint_round_trip_continues_to_the_same_bytes(tmp_path):
    straight, straight_ema, _ = run(tiny(), 5)
    run(tiny(), 3, out=tmp_path)
    folder = tmp_path / CHECKPOINT_DIR / json.loads((tmp_path / CHECKPOINT_DIR / "latest.json").read_text())["folder"]
    assert folder.name == "step-00000003" and len(list((tmp_path / CHECKPOINT_DIR).glob("step-*"))) == 1
    assert {p.name for p in folder.iterdir()} == {"model.safetensors", "optimizer.safetensors", "ema.safetensors",
                                                  "rng.safetensors", "state.json"}
    resumed, resumed_ema, step = run(tiny(seed=9), 5, resume_from=tmp_path)  # other start: all restored
    assert step.step == 5
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(straight_ema.model.state_dict().values(), resumed_ema.model.state_dict().values()):
        assert torch.equal(a, b)
    assert load_checkpoint(tmp_path / "nowhere", tiny(), run(tiny(), 0)[2]) is None


def checkpoint_folder(tmp_path):
    run(tiny(), 2, out=tmp_path)
    return tmp_path / CHECKPOINT_DIR / "step-00000002"


def test_a_tampered_tensor_file_is_refused(tmp_path):
    folder = checkpoint_folder(tmp_path)
    data_bytes = bytearray((folder / "model.safetensors").read_bytes())
    data_bytes[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data_bytes))
    with pytest.raises(IntegrityError, match="model.safetensors"):
        load_checkpoint(tmp_path, tiny(), run(tiny(), 0)[2])


def test_a_pickle_in_place_of_a_tensor_file_is_never_unpickled(tmp_path):
    import hashlib
    import pickle

    folder = checkpoint_folder(tmp_path)

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    (folder / "optimizer.safetensors").write_bytes(pickle.dumps(Boom()))
    record = json.loads((folder / "state.json").read_text())
    record["files"]["optimizer.safetensors"] = hashlib.sha256((folder / "optimizer.safetensors").read_bytes()).hexdigest()
    (folder / "state.json").write_text(json.dumps(record))
    with pytest.raises(NotSafetensorsError, match="pickle"):
        load_checkpoint(tmp_path, tiny(), run(tiny(), 0)[2])


def test_malformed_or_foreign_records_are_typed_errors(tmp_path):
    folder = checkpoint_folder(tmp_path)
    latest = tmp_path / CHECKPOINT_DIR / "latest.json"
    latest.write_text(json.dumps({"folder": "../../elsewhere"}))
    with pytest.raises(CheckpointError, match="names no checkpoint folder"):
        load_checkpoint(tmp_path, tiny(), run(tiny(), 0)[2])
    latest.write_text(json.dumps({"folder": folder.name}))
    record = json.loads((folder / "state.json").read_text())
    (folder / "state.json").write_text(json.dumps({**record, "format": "old"}))
    with pytest.raises(CheckpointError, match="format 'old'"):
        load_checkpoint(tmp_path, tiny(), run(tiny(), 0)[2])
    (folder / "state.json").write_text(json.dumps({**record, "files": {"../model.safetensors": "0"}}))
    with pytest.raises(CheckpointError, match="malformed"):
        load_checkpoint(tmp_path, tiny(), run(tiny(), 0)[2])
    (folder / "state.json").write_text("{not json")
    with pytest.raises(ChorusError, match="state.json"):
        load_checkpoint(tmp_path, tiny(), run(tiny(), 0)[2])


def test_the_settings_check_runs_before_anything_is_restored(tmp_path):
    checkpoint_folder(tmp_path)
    model = tiny(seed=9)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def refuse(state):
        assert state == {"losses": [2]}
        raise ChorusError("other settings")

    with pytest.raises(ChorusError, match="other settings"):
        load_checkpoint(tmp_path, model, run(tiny(), 0)[2], check=refuse)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
