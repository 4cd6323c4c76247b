"""Early stopping of receiver training on a smoothed validation loss of the EMA weights.

Diff-GO^n (arXiv 2412.06980) claims an early-stopping criterion for training but publishes
neither the rule nor code for it; this is the project's rule, stated in full:

1. A fixed validation set: ``val_batches`` batches from the validation split, each with its own
   timesteps t ~ U{0..T-1} and Gaussian noise eps ~ N(0, I), all drawn once from a generator
   seeded by the training seed. The noise is *fresh Gaussian* even when training draws it from a
   noise bank, so the loss measures denoising on the true forward process (what the sampler
   meets), not recall of the bank. Maps are clean (no dropout, no map noise).
2. Every ``every`` optimiser steps, the validation loss V_k of the **EMA weights** (the weights
   a receiver ships) is the training loss (same kind: hybrid or mse) averaged over that set.
3. It is smoothed: S_1 = V_1, S_k = smoothing * S_{k-1} + (1 - smoothing) * V_k.
4. S_k improves when S_k < best * (1 - min_rel_improvement); then best = S_k and the EMA
   weights are kept as ``receiver_best.pt``; otherwise a strike is counted.
5. Training stops after ``patience`` evaluations in a row without improvement. The state
   (best, strikes, S, the history) is checkpointed, so a resumed run applies the same rule.

Example:
    >>> rule = EarlyStoppingRule(every=10, patience=2, smoothing=0.0)
    >>> state = EarlyStoppingState()
    >>> [state.update(v, step, rule) for step, v in ((10, 1.0), (20, 0.9), (30, 0.95), (40, 0.91))]
    [True, True, False, False]
    >>> state.stopped, state.best_step
    (True, 20)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["EarlyStoppingRule", "EarlyStoppingState", "ValidationSet"]


@dataclass(frozen=True)
class EarlyStoppingRule:
    """The rule's parameters (``early_stopping:`` in a receiver training config).

    Attributes:
        every: optimiser steps between validations.
        patience: validations in a row without improvement before stopping.
        min_rel_improvement: relative decrease of the smoothed loss that counts as improvement.
        smoothing: EMA factor of the validation loss (0 = no smoothing).
        val_batches: batches in the fixed validation set.
    """

    every: int = 100
    patience: int = 5
    min_rel_improvement: float = 0.01
    smoothing: float = 0.5
    val_batches: int = 4

    def __post_init__(self) -> None:
        if self.every < 1 or self.patience < 1 or self.val_batches < 1:
            raise ValueError("early_stopping: every, patience and val_batches must be >= 1")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError("early_stopping: smoothing must lie in [0, 1)")
        if not 0.0 <= self.min_rel_improvement < 1.0:
            raise ValueError("early_stopping: min_rel_improvement must lie in [0, 1)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EarlyStoppingRule:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown early_stopping keys {unknown}; valid: {sorted(known)}")
        return cls(**data)


@dataclass
class EarlyStoppingState:
    """Where the rule stands (plain types: checkpointed inside ``train_state.pt``).

    Attributes:
        best: best smoothed loss so far (None before the first validation).
        best_step: the step of ``best``.
        smoothed: the current smoothed loss S_k.
        strikes: validations since the last improvement.
        stopped: the rule fired.
        history: [step, V_k, S_k] per validation.
    """

    best: float | None = None
    best_step: int | None = None
    smoothed: float | None = None
    strikes: int = 0
    stopped: bool = False
    history: list[list[float]] = field(default_factory=list)

    def update(self, loss: float, step: int, rule: EarlyStoppingRule) -> bool:
        """Feed V_k at ``step``; True when it is a new best (keep the weights)."""
        loss = float(loss)
        self.smoothed = loss if self.smoothed is None else (
            rule.smoothing * self.smoothed + (1.0 - rule.smoothing) * loss)
        self.history.append([float(step), loss, self.smoothed])
        if self.best is None or self.smoothed < self.best * (1.0 - rule.min_rel_improvement):
            self.best, self.best_step, self.strikes = self.smoothed, int(step), 0
            return True
        self.strikes += 1
        self.stopped = self.strikes >= rule.patience
        return False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EarlyStoppingState:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class ValidationSet:
    """The fixed validation batches: (x0, y, low_res | None, t, eps) each.

    Built once by :meth:`draw` from ``val_batch_fn`` and a generator seeded by ``seed``.
    """

    batches: list[tuple[Tensor, Tensor, Tensor | None, Tensor, Tensor]]

    @classmethod
    def draw(cls, val_batch_fn: Callable[[int, torch.Generator], tuple[Tensor, Tensor, Any]],
             count: int, num_timesteps: int, seed: int,
             lowres_fn: Callable[[Tensor], Tensor] | None = None) -> ValidationSet:
        generator = torch.Generator().manual_seed(seed)
        batches = []
        for i in range(count):
            images, y, low_res = val_batch_fn(i, generator)
            if low_res is None and lowres_fn is not None:
                low_res = lowres_fn(images.float())
            t = torch.randint(num_timesteps, (images.shape[0],), generator=generator)
            eps = torch.randn(images.shape, generator=generator)
            batches.append((images.float(), y.float(), low_res, t, eps))
        return cls(batches)

    @torch.no_grad()
    def loss(self, net: nn.Module, weights: Mapping[str, Tensor], schedule,
             loss_fn: Callable[..., Any], device: torch.device) -> float:
        """Mean loss of ``net`` carrying ``weights`` (e.g. the EMA) over the set.

        ``loss_fn(schedule, model_output, x0, x_t, t, eps) -> LossTerms``.
        """
        model = copy.deepcopy(net)
        model.load_state_dict({k: v.to(device) for k, v in weights.items()})
        model.eval()
        total, count = 0.0, 0
        for x0, y, low_res, t, eps in self.batches:
            x0, y, t, eps = x0.to(device), y.to(device), t.to(device), eps.to(device)
            x_t = schedule.q_sample(x0, t, eps)
            extra = {} if low_res is None else {"low_res": low_res.to(device)}
            terms = loss_fn(schedule, model(x_t, t, y, **extra), x0, x_t, t, eps)
            total += float(terms.loss.sum())
            count += x0.shape[0]
        return total / count
