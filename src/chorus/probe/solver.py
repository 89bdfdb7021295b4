"""Full-batch L-BFGS for many L2-regularised linear probes at once.

Probe ``(block, r)`` is a linear map of feature block ``block`` (``[rows, D]``, e.g. one
layer under one pooling) to the logits, with weights ``[D, C]``, a bias ``[C]`` and the
penalty ``l2[r]``. Its objective is the one of scikit-learn's ``LogisticRegression(C)``
with ``l2 = 1 / (C · rows)``::

    f = mean loss over rows + (l2[r] / 2) ||W||²      (the bias is not penalised)

with softmax cross-entropy for class-index targets (scikit-learn's multinomial loss) or
binary cross-entropy averaged over rows and classes for multi-hot targets. Each probe is
strongly convex (``l2 > 0``): one optimum, whatever the solver.

How all of them are solved together:

- each block's features are rotated once onto their principal axes (``r`` axes, at most
  ``rows``; float64 eigen-decomposition): the penalty is rotation-invariant and the
  optimum lies in the span of the rows, so the problem is the same in ``r`` coordinates,
  where the loss's curvature at the start (uniform probabilities: ``κ λ``, κ = 1/C for
  softmax cross-entropy, 1/(4 C) for the binary one averaged over C classes) plus ``l2``
  is diagonal. Parameters are scaled by ``1 / sqrt(κ λ + l2)``, a diagonal preconditioner;
- blocks with the same number of axes form one bucket: one batched matrix product per
  evaluation for all its blocks × L2 strengths (no padding), and per-probe scalars are
  sums over two axes; every probe takes limited-memory BFGS steps (Nocedal & Wright,
  "Numerical Optimization", 2006, Algorithms 7.4/7.5; 5 pairs) with its own backtracking
  Armijo line search;
- a probe stops when it passes scikit-learn's test — no entry of the gradient with
  respect to its original weights ``[D, C]`` and biases exceeds ``tol`` (scipy's
  ``pgtol``) — when its objective stops decreasing (float precision), or after
  ``max_iter`` iterations; a block, or an L2 strength, leaves the computation once all
  its probes stopped. The test maps the gradient back through the block's axes (a
  ``[D, r]`` product), so it runs only when it can pass: the largest entry of a vector of
  norm ``g`` in ``D`` coordinates is at least ``g / sqrt(D)``, and after each test a probe
  waits until its norm along the axes times the ratio (largest entry / norm) just seen is
  below ``tol``. The same test along the principal axes would be stricter than
  scikit-learn's (a residual along a few axes spreads over the ``D`` coordinates) and
  takes 1.7–1.8× the iterations at the same ``tol``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from .losses import dense_targets
from .models import LinearProbes, SplitInputs

_ARMIJO = 1e-4
_BACKTRACKS = 30


@dataclass
class LinearFit:
    """Solutions of every probe: ``weights[b]`` ``[D_b, R, C]``, ``biases[b]`` ``[R, C]``;
    per probe ``[blocks, R]``: the objective, L-BFGS iterations and whether the gradient
    test (``max |grad| <= tol``) was met."""

    weights: list[Tensor]
    biases: list[Tensor]
    objective: Tensor
    iterations: Tensor
    converged: Tensor


@dataclass
class _Block:
    """One feature block on its principal axes: ``x [rows, r + 1]`` (a column of ones, then
    the rotated features), ``basis [D, r]`` (float64) and the curvature bound ``[r + 1]``."""

    x: Tensor
    basis: Tensor
    bound: Tensor


def _principal_axes(x: Tensor) -> tuple[Tensor, Tensor]:
    """Orthonormal axes ``[D, r]`` spanning the rows of ``x [rows, D]`` (float64) and the
    eigenvalues ``[r]`` of ``x^T x / rows`` along them (directions without variance dropped)."""
    rows, width = x.shape
    if width <= rows:
        eigen, basis = torch.linalg.eigh(x.T @ x / rows)
    else:
        eigen, basis = torch.linalg.eigh(x @ x.T / rows)
    keep = eigen > eigen.max().clamp_min(1e-300) * 1e-10
    eigen = eigen[keep]
    if width <= rows:
        return basis[:, keep], eigen
    return x.T @ basis[:, keep] / (rows * eigen).sqrt(), eigen


def _block(x: Tensor, curvature: float, dtype: torch.dtype) -> _Block:
    x64 = x.double()
    basis, eigen = _principal_axes(x64)
    ones = torch.ones(len(x), 1, dtype=dtype)
    bound = torch.cat([torch.ones(1, dtype=torch.float64), eigen]) * curvature
    return _Block(torch.cat([ones, (x64 @ basis).to(dtype)], dim=1), basis, bound)


class _Bucket:
    """Blocks with the same number of axes solved together: ``x [B, rows, depth]`` (column
    0: ones, for the biases; then the block's principal axes) and ``bases[b]`` ``[D_b,
    depth - 1]``. Parameters are ``[B, depth, R, C]``, scaled: ``theta = scale * u``; probe
    ``(b, r)`` owns ``[b, :, r, :]``."""

    def __init__(self, blocks: list[_Block], ids: list[int], l2: Tensor, targets: Tensor, classes: int,
                 dtype: torch.dtype):
        self.ids, self.targets, self.classes, self.rows = list(ids), targets, classes, len(targets)
        self.exclusive = targets.dim() == 1
        self.dense = dense_targets(targets, classes).to(dtype).view(self.rows, 1, classes)
        self.depth = blocks[ids[0]].x.shape[1]
        self.x = torch.stack([blocks[i].x for i in ids])
        self.xt = self.x.transpose(1, 2).contiguous()
        self.bases = [blocks[i].basis.to(dtype) for i in ids]
        bound = torch.stack([blocks[i].bound for i in ids]).view(len(ids), self.depth, 1, 1)
        decay = l2.double().view(1, 1, -1, 1).expand(1, self.depth, -1, 1).clone()
        decay[:, 0] = 0.0
        self.scale = (bound + decay).rsqrt().to(dtype)
        self.decay = decay.to(dtype)

    def __len__(self) -> int:
        return len(self.ids)

    def keep(self, blocks: Tensor, rates: Tensor) -> None:
        """Keep the blocks where ``blocks [B]`` and the L2 strengths where ``rates [R]``."""
        kept = blocks.tolist()
        self.ids = [i for i, k in zip(self.ids, kept) if k]
        self.bases = [b for b, k in zip(self.bases, kept) if k]
        self.x, self.xt = self.x[blocks], self.xt[blocks]
        self.scale, self.decay = self.scale[blocks][:, :, rates], self.decay[:, :, rates]

    def evaluate(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """Objective ``[B, R]`` and its gradient with respect to ``u`` ``[B, depth, R, C]``."""
        blocks, depth, rates, classes = u.shape
        theta = u * self.scale
        logits = torch.bmm(self.x, theta.view(blocks, depth, -1)).view(blocks, self.rows, rates, classes)
        if self.exclusive:
            log_p = torch.log_softmax(logits, dim=-1)
            picked = log_p.gather(3, self.targets.view(1, -1, 1, 1).expand(blocks, -1, rates, 1))
            loss = -picked.mean(dim=(1, 3))
            residual, norm = log_p.exp_().sub_(self.dense), 1.0 / self.rows
        else:
            target = self.dense.expand(blocks, -1, rates, -1)
            loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=(1, 3))
            residual, norm = torch.sigmoid(logits).sub_(target), 1.0 / (self.rows * classes)
        grad = torch.bmm(self.xt, residual.view(blocks, self.rows, -1)).view(u.shape).mul_(norm)
        penalty = self.decay * theta
        objective = loss + 0.5 * (penalty * theta).sum(dim=(1, 3))
        return objective, grad.add_(penalty).mul_(self.scale)

    def largest_entry(self, row: int, gradient: Tensor) -> Tensor:
        """Per L2 strength ``[R]``, the largest ``|entry|`` of block ``row``'s weight
        gradient in the original coordinates, from ``gradient [depth - 1, R, C]`` along
        its axes."""
        weights = self.bases[row] @ gradient.reshape(self.depth - 1, -1)
        return weights.view(len(weights), *gradient.shape[1:]).abs().amax(dim=(0, 2))


class _Test:
    """scikit-learn's convergence test (no gradient entry of the original weights and
    biases above ``tol``) for the probes ``[B, R]`` of a bucket, mapping the gradient
    back to the original coordinates only for probes that may pass (module docstring)."""

    def __init__(self, bucket: _Bucket, rates: int, tol: float):
        self.bucket, self.tol = bucket, tol
        widths = torch.tensor([len(b) for b in bucket.bases], dtype=bucket.x.dtype)
        self.ratio = widths.rsqrt().view(-1, 1).expand(-1, rates).clone()

    def keep(self, blocks: Tensor, rates: Tensor) -> None:
        self.ratio = self.ratio[blocks][:, rates]

    def passed(self, grad: Tensor, active: Tensor) -> Tensor:
        """Which probes pass, from ``grad`` with respect to ``u`` ``[B, depth, R, C]``."""
        g = grad / self.bucket.scale
        biases_met = g[:, 0].abs().amax(dim=-1) <= self.tol
        norm = g[:, 1:].square().sum(dim=(1, 3)).sqrt()
        met = biases_met & (norm <= self.tol)
        due = active & biases_met & ~met & (self.ratio * norm <= self.tol)
        for row in due.any(dim=1).nonzero().flatten().tolist():
            largest = self.bucket.largest_entry(row, g[row, 1:])
            self.ratio[row] = torch.where(due[row], largest / norm[row].clamp_min(self.tol * 1e-6), self.ratio[row])
            met[row] |= due[row] & (largest <= self.tol)
        return met


def _buckets(blocks: list[_Block]) -> list[list[int]]:
    """Block ids grouped by number of axes (equal widths share a bucket)."""
    groups: dict[int, list[int]] = {}
    for i in sorted(range(len(blocks)), key=lambda i: blocks[i].x.shape[1]):
        groups.setdefault(blocks[i].x.shape[1], []).append(i)
    return list(groups.values())


@torch.no_grad()
def fit_linear(features: list[Tensor], targets: Tensor, l2: Tensor, classes: int, *, max_iter: int = 1000,
               tol: float = 1e-4, history: int = 5, dtype: torch.dtype = torch.float32) -> LinearFit:
    """Minimise every probe's objective (see the module docstring).

    ``features[b]``: ``[rows, D_b]`` (standardised); ``targets``: ``[rows]`` int64 class
    indices or ``[rows, classes]`` float multi-hot; ``l2``: ``[R]`` penalties, each applied
    to every block; ``dtype``: of the iterations (principal axes are found in float64).
    Deterministic: no random draw.
    """
    curvature = 1.0 / classes if targets.dim() == 1 else 0.25 / classes
    blocks = [_block(x, curvature, dtype) for x in features]
    count, rates = len(blocks), len(l2)
    thetas: dict[tuple[int, int], Tensor] = {}
    objective = torch.zeros(count, rates, dtype=torch.float64)
    iterations = torch.zeros(count, rates, dtype=torch.int64)
    converged = torch.zeros(count, rates, dtype=torch.bool)
    for ids in _buckets(blocks):
        bucket = _Bucket(blocks, ids, l2, targets, classes, dtype)
        for (i, r), (theta, value, steps, met) in _minimise(bucket, rates, max_iter, tol, history).items():
            thetas[i, r], objective[i, r], iterations[i, r], converged[i, r] = theta, value, steps, met
    weights, biases = [], []
    for i, block in enumerate(blocks):
        theta = torch.stack([thetas[i, r].double() for r in range(rates)], dim=1)  # [r + 1, R, C]: biases first
        weights.append(torch.einsum("dk,krc->drc", block.basis, theta[1:]))
        biases.append(theta[0])
    return LinearFit(weights, biases, objective, iterations, converged)


def _minimise(bucket: _Bucket, rates: int, max_iter: int, tol: float,
              history: int) -> dict[tuple[int, int], tuple[Tensor, float, int, bool]]:
    """L-BFGS from zero on every probe of ``bucket``; per ``(block id, rate)``: ``theta
    [depth, C]`` (biases first), objective, iterations and whether the gradient test was
    met. A probe is recorded when it stops; a block, or a rate, whose probes have all
    stopped leaves the products."""
    u = torch.zeros(len(bucket), bucket.depth, rates, bucket.classes, dtype=bucket.x.dtype)
    objective, grad = bucket.evaluate(u)
    steps = torch.zeros(len(bucket), rates, dtype=torch.int64)
    gamma = torch.ones(len(bucket), rates, dtype=u.dtype)
    pairs: list[tuple[Tensor, Tensor, Tensor]] = []
    results: dict[tuple[int, int], tuple[Tensor, float, int, bool]] = {}
    columns = list(range(rates))
    tiny = torch.finfo(u.dtype).eps
    test = _Test(bucket, rates, tol)
    active = torch.ones(len(bucket), rates, dtype=torch.bool)
    met = test.passed(grad, active)
    active &= ~met
    while True:
        stopped = (~active).nonzero().tolist()
        if stopped:
            theta = u * bucket.scale
        for row, column in stopped:
            key = (bucket.ids[row], columns[column])
            if key not in results:
                results[key] = (theta[row, :, column].clone(), float(objective[row, column]),
                                int(steps[row, column]), bool(met[row, column]))
        rows, cols = active.any(dim=1), active.any(dim=0)
        if not bool(rows.any()):
            return results
        if not bool(rows.all() and cols.all()):
            bucket.keep(rows, cols)
            test.keep(rows, cols)
            columns = [c for c, k in zip(columns, cols.tolist()) if k]
            u, grad = u[rows][:, :, cols], grad[rows][:, :, cols]
            objective, steps, gamma = objective[rows][:, cols], steps[rows][:, cols], gamma[rows][:, cols]
            active, met = active[rows][:, cols], met[rows][:, cols]
            pairs = [(s[rows][:, :, cols], y[rows][:, :, cols], rho[rows][:, cols]) for s, y, rho in pairs]
        frozen = active.to(u.dtype).view(len(bucket), 1, len(columns), 1)
        direction = _two_loop(grad, pairs, gamma).mul_(frozen).neg_()
        slope = (grad * direction).sum(dim=(1, 3))
        u_new, objective_new, grad_new, moved = _line_search(bucket, u, objective, grad, direction, slope, active)
        step, change = u_new - u, grad_new - grad
        curvature, change_norm = (step * change).sum(dim=(1, 3)), (change * change).sum(dim=(1, 3))
        usable = moved & (curvature > tiny * change_norm)
        rho = torch.where(usable, 1.0 / curvature.clamp_min(tiny), torch.zeros_like(curvature))
        pairs = (pairs + [(step, change, rho)])[-history:]
        gamma = torch.where(usable, curvature / change_norm.clamp_min(tiny), gamma)
        stalled = ~moved | (objective_new >= objective)
        u, objective, grad = u_new, objective_new, grad_new
        steps += active.to(torch.int64)
        met = test.passed(grad, active)
        active &= ~met & ~stalled & (steps < max_iter)


def _per_probe(values: Tensor) -> Tensor:
    """``[B, R]`` -> broadcastable over ``[B, depth, R, C]``."""
    return values.view(values.shape[0], 1, values.shape[1], 1)


def _two_loop(grad: Tensor, pairs: list[tuple[Tensor, Tensor, Tensor]], gamma: Tensor) -> Tensor:
    """The L-BFGS product ``H grad`` per probe (pairs with ``rho = 0`` are skipped)."""
    q = grad.clone()
    alphas = []
    for step, change, rho in reversed(pairs):
        alpha = rho * (step * q).sum(dim=(1, 3))
        q.sub_(_per_probe(alpha) * change)
        alphas.append(alpha)
    r = q.mul_(_per_probe(gamma))
    for (step, change, rho), alpha in zip(pairs, reversed(alphas)):
        beta = rho * (change * r).sum(dim=(1, 3))
        r.add_(_per_probe(alpha - beta) * step)
    return r


def _line_search(bucket: _Bucket, u: Tensor, objective: Tensor, grad: Tensor, direction: Tensor, slope: Tensor,
                 active: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per probe, the first step ``t`` in 1, 1/2, 1/4... meeting Armijo's condition.

    Returns the new parameters, objectives and gradients, and which probes moved (the
    others, inactive or whose search failed, stay where they were; inactive probes have a
    zero direction, so when every active probe takes the full step, the candidate is
    kept whole)."""
    pending = active & (slope < 0)
    candidate = u + direction
    value, gradient = bucket.evaluate(candidate)
    accept = pending & (value <= objective + _ARMIJO * slope)
    if bool((accept | ~active).all()):
        return candidate, torch.where(accept, value, objective), gradient, accept
    step = torch.ones_like(objective)
    u_new, objective_new, grad_new = u.clone(), objective.clone(), grad.clone()
    moved = torch.zeros_like(pending)
    for _ in range(_BACKTRACKS):
        if bool(accept.any()):
            elements = _per_probe(accept)
            u_new = torch.where(elements, candidate, u_new)
            grad_new = torch.where(elements, gradient, grad_new)
            objective_new = torch.where(accept, value, objective_new)
            moved |= accept
        pending &= ~accept
        if not bool(pending.any()):
            break
        step = torch.where(pending, step * 0.5, step)
        candidate = u + _per_probe(step) * direction
        value, gradient = bucket.evaluate(candidate)
        accept = pending & (value <= objective + _ARMIJO * step * slope)
    return u_new, objective_new, grad_new, moved


def solve_linear_probes(inputs: dict[str, SplitInputs], classes: int, c_values: tuple[float, ...], *,
                        max_iter: int = 1000, tol: float = 1e-4) -> dict[str, tuple[LinearProbes, Tensor]]:
    """Per pooling (inputs of the same train rows): :class:`LinearProbes` for every layer ×
    value of ``c_values`` (probe ``layer * R + r`` uses ``C = c_values[r]``), each at its
    optimum, and the L-BFGS iterations of each probe ``[probes]``. One solve for all."""
    rows = len(next(iter(inputs.values())))
    l2 = torch.tensor([1.0 / (c * rows) for c in c_values], dtype=torch.float64)
    features = [x for split in inputs.values() for x in split.pooled]
    fit = fit_linear(features, next(iter(inputs.values())).targets, l2, classes, max_iter=max_iter, tol=tol)
    solved, first = {}, 0
    for pooling, split in inputs.items():
        layers = range(first, first + len(split.pooled))
        model = LinearProbes([x.shape[1] for x in split.pooled], len(c_values), classes)
        values = torch.empty(model.full_size)
        blocks = model.blocks(values)
        for layer, block in enumerate(layers):
            blocks[f"weight_{layer}"].copy_(fit.weights[block])
            blocks[f"bias_{layer}"].copy_(fit.biases[block])
        model.restore(values)
        solved[pooling] = (model, fit.iterations[first:first + len(split.pooled)].reshape(-1))
        first += len(split.pooled)
    return solved
