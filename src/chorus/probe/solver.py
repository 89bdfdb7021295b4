"""Full-batch L-BFGS for many L2-regularised linear probes at once.

Probe ``p = block * R + r`` is a linear map of feature block ``block`` (``[rows, D]``) to
the logits, with weights ``[D, C]``, a bias ``[C]`` and the penalty ``l2[r]``. Its objective
is the one of scikit-learn's ``LogisticRegression(C)`` with ``l2 = 1 / (C · rows)``::

    f_p = mean loss over rows + (l2[r] / 2) ||W_p||²      (the bias is not penalised)

with softmax cross-entropy for class-index targets (scikit-learn's multinomial loss) or
binary cross-entropy averaged over rows and classes for multi-hot targets. Each probe is
convex and, with ``l2 > 0``, strongly convex, so each has one optimum whatever the solver.

All probes are minimised together by limited-memory BFGS (Nocedal & Wright, "Numerical
Optimization", 2006, Algorithm 7.4 and 7.5) with a backtracking Armijo line search per
probe: every parameter of every probe sits in one flat tensor with its probe alongside,
so one iteration is one matrix product per block for the loss and its closed-form
gradient, and the per-probe scalars of the two-loop recursion are segment sums. A probe
stops when its largest gradient entry is at most ``tol`` (scikit-learn's ``gtol``), when
its objective no longer decreases (float precision), or after ``max_iter`` iterations;
stopped probes keep their parameters and take no further steps.
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
    per probe ``[blocks * R]``: the objective, iterations taken and whether the gradient
    test (``max |grad| <= tol``) was met."""

    weights: list[Tensor]
    biases: list[Tensor]
    objective: Tensor
    iterations: Tensor
    converged: Tensor


class _Problem:
    """The objectives of all probes over one flat parameter vector.

    Block ``b`` occupies ``[D_b + 1, R, C]`` elements (the last row holds the biases).
    """

    def __init__(self, features: list[Tensor], targets: Tensor, l2: Tensor, classes: int):
        dtype = features[0].dtype
        self.rows, self.rates, self.classes = features[0].shape[0], len(l2), classes
        ones = torch.ones(self.rows, 1, dtype=dtype)
        self.x = [torch.cat([x, ones], dim=1) for x in features]
        self.shapes = [(x.shape[1], self.rates, classes) for x in self.x]
        self.sizes = [depth * self.rates * classes for depth, _, _ in self.shapes]
        owners, decays = [], []
        for block, (depth, rates, _) in enumerate(self.shapes):
            probe = torch.arange(rates).view(1, rates, 1) + block * rates
            owners.append(probe.expand(depth, rates, classes).reshape(-1))
            decay = l2.to(dtype).view(1, rates, 1).expand(depth, rates, classes).clone()
            decay[-1] = 0.0
            decays.append(decay.reshape(-1))
        self.owner, self.decay = torch.cat(owners), torch.cat(decays)
        self.probes = len(self.x) * self.rates
        self.exclusive = targets.dim() == 1
        self.targets = targets
        self.dense = dense_targets(targets, classes).to(dtype)

    def segment_sum(self, values: Tensor) -> Tensor:
        """``[elements]`` -> ``[probes]`` sums per probe."""
        return torch.zeros(self.probes, dtype=values.dtype).index_add_(0, self.owner, values)

    def segment_max(self, values: Tensor) -> Tensor:
        return torch.zeros(self.probes, dtype=values.dtype).scatter_reduce_(0, self.owner, values, "amax")

    def evaluate(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """Objective ``[probes]`` and gradient ``[elements]`` at ``theta [elements]``."""
        losses, grads = [], []
        rows, rates, classes = self.rows, self.rates, self.classes
        for x, part, (depth, _, _) in zip(self.x, theta.split(self.sizes), self.shapes):
            logits = (x @ part.view(depth, -1)).view(rows, rates, classes)
            if self.exclusive:
                log_p = torch.log_softmax(logits, dim=-1)
                picked = log_p.gather(2, self.targets.view(rows, 1, 1).expand(rows, rates, 1))
                losses.append(-picked.view(rows, rates).mean(dim=0))
                residual, scale = log_p.exp_().sub_(self.dense.unsqueeze(1)), 1.0 / rows
            else:
                target = self.dense.unsqueeze(1).expand(rows, rates, classes)
                losses.append(F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=(0, 2)))
                residual, scale = torch.sigmoid(logits).sub_(target), 1.0 / (rows * classes)
            grads.append((x.T @ residual.view(rows, -1)).view(-1).mul_(scale))
        penalty = self.decay * theta
        objective = torch.cat(losses) + 0.5 * self.segment_sum(penalty * theta)
        return objective, torch.cat(grads).add_(penalty)


@torch.no_grad()
def fit_linear(features: list[Tensor], targets: Tensor, l2: Tensor, classes: int, *, max_iter: int = 1000,
               tol: float = 1e-4, history: int = 10) -> LinearFit:
    """Minimise every probe's objective (see the module docstring).

    ``features[b]``: ``[rows, D_b]`` (standardised); ``targets``: ``[rows]`` int64 class
    indices or ``[rows, classes]`` float multi-hot; ``l2``: ``[R]`` penalties, each applied
    to every block. Deterministic: no random draw.
    """
    problem = _Problem(features, targets, l2, classes)
    owner = problem.owner
    theta = torch.zeros(len(owner), dtype=features[0].dtype)
    objective, grad = problem.evaluate(theta)
    active = problem.segment_max(grad.abs()) > tol
    iterations = torch.zeros(problem.probes, dtype=torch.int64)
    pairs: list[tuple[Tensor, Tensor, Tensor]] = []
    gamma = 1.0 / problem.segment_sum(grad * grad).sqrt().clamp_min(1e-12)
    tiny = torch.finfo(theta.dtype).eps
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        direction = _two_loop(problem, grad, pairs, gamma).mul_(active[owner].to(theta.dtype)).neg_()
        slope = problem.segment_sum(grad * direction)
        theta_new, objective_new, grad_new, moved = _line_search(problem, theta, objective, grad, direction, slope,
                                                                  active)
        step, change = theta_new - theta, grad_new - grad
        curvature = problem.segment_sum(step * change)
        usable = moved & (curvature > tiny * problem.segment_sum(change * change).clamp_min(tiny))
        rho = torch.where(usable, 1.0 / curvature.clamp_min(tiny), torch.zeros_like(curvature))
        pairs = (pairs + [(step, change, rho)])[-history:]
        gamma = torch.where(usable, curvature / problem.segment_sum(change * change).clamp_min(tiny), gamma)
        decrease = objective - objective_new
        iterations += active.to(torch.int64)
        stalled = ~moved | (decrease <= tiny * torch.maximum(objective.abs(), objective_new.abs()).clamp_min(1.0))
        theta, objective, grad = theta_new, objective_new, grad_new
        active &= (problem.segment_max(grad.abs()) > tol) & ~stalled
    converged = problem.segment_max(grad.abs()) <= tol
    weights, biases = [], []
    for part, shape in zip(theta.split(problem.sizes), problem.shapes):
        block = part.view(shape)
        weights.append(block[:-1].clone())
        biases.append(block[-1].clone())
    return LinearFit(weights, biases, objective, iterations, converged)


def _two_loop(problem: _Problem, grad: Tensor, pairs: list[tuple[Tensor, Tensor, Tensor]], gamma: Tensor) -> Tensor:
    """The L-BFGS product ``H grad`` per probe (pairs with ``rho = 0`` are skipped)."""
    owner = problem.owner
    q = grad.clone()
    alphas = []
    for step, change, rho in reversed(pairs):
        alpha = rho * problem.segment_sum(step * q)
        q.sub_(alpha[owner] * change)
        alphas.append(alpha)
    r = q.mul_(gamma[owner])
    for (step, change, rho), alpha in zip(pairs, reversed(alphas)):
        beta = rho * problem.segment_sum(change * r)
        r.add_((alpha - beta)[owner] * step)
    return r


def _line_search(problem: _Problem, theta: Tensor, objective: Tensor, grad: Tensor, direction: Tensor, slope: Tensor,
                 active: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per probe, the first step ``t`` in 1, 1/2, 1/4... meeting Armijo's condition.

    Returns the new parameters, objectives and gradients, and which probes moved
    (inactive probes, and those whose search failed, stay where they were)."""
    owner = problem.owner
    pending = active & (slope < 0)
    step = torch.ones_like(objective)
    theta_new, objective_new, grad_new = theta.clone(), objective.clone(), grad.clone()
    moved = torch.zeros_like(active)
    for _ in range(_BACKTRACKS):
        if not bool(pending.any()):
            break
        candidate = theta + step[owner] * direction
        value, gradient = problem.evaluate(candidate)
        accept = pending & (value <= objective + _ARMIJO * step * slope)
        if bool(accept.any()):
            elements = accept[owner]
            theta_new = torch.where(elements, candidate, theta_new)
            grad_new = torch.where(elements, gradient, grad_new)
            objective_new = torch.where(accept, value, objective_new)
            moved |= accept
        pending &= ~accept
        step = torch.where(pending, step * 0.5, step)
    return theta_new, objective_new, grad_new, moved


def solve_linear_probes(train: SplitInputs, classes: int, c_values: tuple[float, ...], *, max_iter: int = 1000,
                        tol: float = 1e-4) -> tuple[LinearProbes, LinearFit]:
    """:class:`LinearProbes` for every layer of ``train.pooled`` × value of ``c_values``
    (probe ``layer * R + r`` uses ``C = c_values[r]``), each at its optimum; the solve runs
    in float64, the probes hold float32."""
    rows = len(train)
    l2 = torch.tensor([1.0 / (c * rows) for c in c_values], dtype=torch.float64)
    fit = fit_linear([x.double() for x in train.pooled], train.targets, l2, classes, max_iter=max_iter, tol=tol)
    model = LinearProbes([x.shape[1] for x in train.pooled], len(c_values), classes)
    values = torch.empty(model.full_size)
    blocks = model.blocks(values)
    for layer, (weight, bias) in enumerate(zip(fit.weights, fit.biases)):
        blocks[f"weight_{layer}"].copy_(weight)
        blocks[f"bias_{layer}"].copy_(bias)
    model.restore(values)
    return model, fit
