"""Task-vector geometry on constructed vectors: cosine, sign conflicts, top-k overlap,
layers in network order, effective rank, streaming equal to the dense computation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from chorus.analysis import AnalysisError, vector_geometry
from chorus.analysis import geometry as geometry_module
from chorus.analysis.layers import layer_of, ordered_layers
from chorus.analysis.rank import effective_rank
from chorus.taskvec import TaskVector


class Net(nn.Module):
    """Parameters deliberately not in alphabetical order: ``zeta`` before ``blocks``, and
    ``blocks.10`` after ``blocks.9``."""

    def __init__(self):
        super().__init__()
        self.zeta = nn.Linear(3, 4)
        self.blocks = nn.ModuleList([nn.Conv1d(2, 2, 3) for _ in range(11)])


def vector(deltas: dict[str, torch.Tensor], group: str) -> TaskVector:
    """A task vector whose deltas are ``deltas`` (other parameters: zero)."""
    base = Net()
    for parameter in base.parameters():
        nn.init.zeros_(parameter)
    tuned = Net()
    state = {name: deltas.get(name, torch.zeros_like(p)) for name, p in base.state_dict().items()}
    tuned.load_state_dict(state)
    return TaskVector.from_models(base, tuned, encoder_name="net", sample_rate=16_000, group=group)


def shapes() -> dict[str, torch.Size]:
    return {name: p.shape for name, p in Net().named_parameters()}


def random_deltas(seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=gen, dtype=torch.float64).float() for name, shape in shapes().items()}


def flat(deltas: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.double().reshape(-1) for t in deltas.values()])


def unflat(values: torch.Tensor) -> dict[str, torch.Tensor]:
    result, start = {}, 0
    for name, shape in shapes().items():
        count = math.prod(shape)
        result[name] = values[start:start + count].reshape(shape).float()
        start += count
    return result


def test_orthogonal_vectors_have_cosine_zero_and_a_negation_minus_one():
    a = flat(random_deltas(0))
    b = flat(random_deltas(1))
    b = b - (a @ b) / (a @ a) * a  # Gram-Schmidt in float64, then stored as float32
    geometry = vector_geometry([vector(unflat(a), "a"), vector(unflat(b), "b"), vector(unflat(-a), "minus_a")])
    cosine = geometry.whole.cosine()
    assert abs(cosine[0][1]) < 1e-6
    assert cosine[0][2] == pytest.approx(-1.0, abs=1e-6)
    assert cosine[0][0] == pytest.approx(1.0, abs=1e-6)
    assert geometry.whole.norms()[0] == pytest.approx(float(a.norm()), rel=1e-6)
    conflicts = geometry.whole.sign_conflicts()
    assert conflicts[0][2] == 1.0 and conflicts[0][0] == 0.0
    assert 0.2 < conflicts[0][1] < 0.8  # unrelated signs disagree about half the time


def test_a_vector_with_itself_has_no_sign_conflicts_and_full_topk_overlap():
    deltas = random_deltas(2)
    geometry = vector_geometry([vector(deltas, "a"), vector(deltas, "a again")])
    assert geometry.whole.sign_conflicts() == [[0.0, 0.0], [0.0, 0.0]]
    assert geometry.whole.multi_conflict_rate() == 0.0
    assert geometry.whole.topk_jaccard()[0][1] == 1.0
    assert geometry.mean_off_diagonal_cosine() == pytest.approx(1.0, abs=1e-6)


def test_sign_threshold_and_topk_counts_by_hand():
    zeta = torch.tensor([[0.5, -0.05, 0.3], [0.0, 2.0, -1.0], [0.2, 0.2, 0.2], [0.1, 0.1, 0.1]])
    other = torch.tensor([[-0.5, 0.4, 0.3], [1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    geometry = vector_geometry([vector({"zeta.weight": zeta}, "a"), vector({"zeta.weight": other}, "b")],
                               sign_threshold=0.1, topk=0.25)
    layer = geometry.layers["zeta"]
    # both above 0.1: (0,0) opposite, (0,2) same, (1,1) same, (1,2) opposite -> 2 of 4
    assert layer.active[0, 1] == 4 and layer.conflicts[0, 1] == 2
    assert layer.sign_conflicts()[0][1] == 0.5
    # top 25% of the 12 weights = 3 (the zero bias never enters a mask): a keeps the entries
    # (1,1) 2.0, (1,2) -1.0, (0,0) 0.5; b keeps (1,1) 2.0, (1,0) 1.0, (1,2) 1.0 -> 2 shared of 4
    assert layer.top_both[0, 0] == 3 and layer.top_both[1, 1] == 3 and layer.top_both[0, 1] == 2
    assert layer.topk_jaccard()[0][1] == pytest.approx(2 / 4)
    assert geometry.layers["blocks.0"].cosine()[0][1] is None  # zero on this layer: no cosine


def test_layers_follow_the_network_order():
    assert layer_of("encoder.layers.11.attention.q_proj.weight") == "encoder.layers.11"
    assert layer_of("encoder.pos_conv_embed.conv.weight") == "encoder.pos_conv_embed.conv"
    assert layer_of("scale") == "scale"
    assert ordered_layers(["b.2.w", "a.x", "b.10.w", "b.2.v"]) == ["b.2", "a", "b.10"]
    geometry = vector_geometry([vector(random_deltas(3), "a"), vector(random_deltas(4), "b")])
    assert list(geometry.layers) == ["zeta"] + [f"blocks.{i}" for i in range(11)]
    assert [layer["layer"] for layer in geometry.as_dict()["layers"]] == list(geometry.layers)


def test_effective_rank():
    u, v = torch.randn(6, 1), torch.randn(1, 5)
    assert effective_rank(u @ v) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(torch.eye(4)) == pytest.approx(4.0)
    assert effective_rank(torch.zeros(3, 3)) is None
    wide = torch.randn(5, 9, generator=torch.Generator().manual_seed(0))
    singular = torch.linalg.svdvals(wide.double())
    p = singular / singular.sum()
    assert effective_rank(wide) == pytest.approx(math.exp(float(-(p * p.log()).sum())), rel=1e-9)
    geometry = vector_geometry([vector(random_deltas(5), "a"), vector(random_deltas(6), "b")])
    conv = next(r for r in geometry.ranks if r["tensor"] == "blocks.0.weight")
    assert conv["shape"] == [2, 6] and 1.0 < conv["values"][0] <= 2.0
    assert all(not r["tensor"].endswith("bias") for r in geometry.ranks)


def test_streaming_in_blocks_equals_the_dense_computation(monkeypatch):
    monkeypatch.setattr(geometry_module, "_CHUNK", 5)  # many blocks per tensor
    deltas = [random_deltas(seed) for seed in (7, 8, 9)]
    geometry = vector_geometry([vector(d, str(i)) for i, d in enumerate(deltas)], sign_threshold=0.3)
    dense = torch.stack([flat(d) for d in deltas])
    unit = dense / dense.norm(dim=1, keepdim=True)
    torch.testing.assert_close(torch.tensor(geometry.whole.cosine(), dtype=torch.float64), unit @ unit.T)
    signs = torch.where(dense.abs() > 0.3, dense.sign(), torch.zeros_like(dense))
    both = (signs[0] != 0) & (signs[1] != 0)
    disagree = (signs[0][both] != signs[1][both]).double().mean()
    assert geometry.whole.sign_conflicts()[0][1] == pytest.approx(float(disagree))
    active = (signs != 0).sum(dim=0)
    mixed = (signs > 0).any(dim=0) & (signs < 0).any(dim=0)
    assert geometry.whole.multi_conflict_rate() == pytest.approx(float(mixed.sum()) / float((active >= 2).sum()))


def test_vectors_of_other_bases_or_shapes_are_refused():
    a = vector(random_deltas(0), "a")
    other_base = Net()
    other = TaskVector.from_models(other_base, other_base, encoder_name="net", sample_rate=16_000, group="b")
    with pytest.raises(AnalysisError, match="another base"):
        vector_geometry([a, other])
    with pytest.raises(AnalysisError, match="top-k"):
        vector_geometry([a], topk=0.0)
