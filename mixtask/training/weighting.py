"""Loss weighting for the joint schedule: every job's loss in one step, combined into one objective.

With `--schedule joint` each optimiser step computes the loss L_i of every job i of the current
stage and back-propagates one weighted combination of them. The methods:

- `equal`: sum_i L_i.
- `uncertainty`: Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses",
  CVPR 2018, regression form: sum_i exp(-s_i) L_i + s_i with learnable s_i = log sigma_i^2 (the
  paper's Gaussian likelihood, 1/(2 sigma^2) L + log sigma, times 2).
- `dwa`: Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019, Eq. 7:
  w_i = K softmax_i(r_i / T), r_i = L_i(t-1) / L_i(t-2), T = 2, where L_i(t) is the mean loss
  of a window of steps (the paper's epoch).
- `gradnorm`: Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss Balancing in
  Deep Multitask Networks", ICML 2018, Algorithm 1: learnable w_i pulled so that the gradient
  norm of w_i L_i on the last shared layer is mean_j(norm_j) * r_i^alpha, alpha = 1.5, with r_i
  the relative inverse training rate; renormalised to sum_i w_i = K after every step.

Every class has one interface: `combine(losses, step, scales)` -> the objective to
back-propagate, `weights()` -> the current w_i (for the log), `after_step()` (after the
optimiser step), and `state_dict()` / `load_state_dict()` (checkpoints; learnable weights are
nn.Parameters that join the network's optimiser as their own parameter group).

`scales` are the `--balance ema` divisors (each job's running mean loss): the terms weighted are
L_i / c_i, so style losses (~10) and L2 losses (~1e-3) start on one footing. The statistics the
methods adapt from (DWA's loss ratios, GradNorm's training rates) use the raw L_i, which are
scale-free ratios. `uncertainty` ignores `scales`: its exp(-s_i) is itself a learned
per-task scale, and pre-normalised losses would leave it nothing to learn.

K is the number of jobs of the current stage; a class is built for the jobs of every stage (so
Method 3's stage-2 mixes have weights too) and weighs only the jobs it is given at each step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from mixtask import choices
from mixtask.errors import MixtaskError

Reduce = Callable[[torch.Tensor], torch.Tensor]  # mean over ranks under DDP (the identity otherwise)

DWA_WINDOW = 100  # steps per DWA "epoch"
DWA_TEMPERATURE = 2.0
GRADNORM_ALPHA = 1.5
GRADNORM_MIN_WEIGHT = 1e-3  # keeps a weight positive when a step would push it through 0


def _identity(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def _observe(losses: dict[str, torch.Tensor], reduce: Reduce) -> dict[str, float]:
    """The jobs' loss values (detached; averaged over ranks, so every rank adapts the same way)."""
    values = reduce(torch.stack([loss.detach().float() for loss in losses.values()]))
    return dict(zip(losses, values.tolist()))


class Weighting(nn.Module):
    """The common interface of the methods below."""

    def __init__(self, names: Sequence[str], reduce: Reduce = _identity):
        super().__init__()
        self.names = tuple(names)
        self.reduce = reduce
        self.current: dict[str, float] = {}

    def combine(self, losses: dict[str, torch.Tensor], step: int, scales: dict[str, float] | None = None):
        """The objective to back-propagate, from each job's loss at optimiser step `step`."""
        raise NotImplementedError

    def weights(self) -> dict[str, float]:
        """w_i of the last `combine` (the `--balance ema` divisors come on top)."""
        return dict(self.current)

    def after_step(self) -> None:
        """Called after the optimiser step."""

    def _index(self, names) -> torch.Tensor:
        return torch.tensor([self.names.index(name) for name in names])


def _terms(losses: dict[str, torch.Tensor], scales: dict[str, float] | None) -> dict[str, torch.Tensor]:
    """L_i / c_i (the `--balance ema` running means), or L_i without scales."""
    return {name: loss / (scales[name] if scales else 1.0) for name, loss in losses.items()}


class Equal(Weighting):
    """Every job with weight 1: sum_i L_i / c_i."""

    def combine(self, losses: dict[str, torch.Tensor], step: int, scales: dict[str, float] | None = None):
        self.current = dict.fromkeys(losses, 1.0)
        return torch.stack(list(_terms(losses, scales).values())).sum()


class Uncertainty(Weighting):
    """Kendall et al. (CVPR 2018): sum_i exp(-s_i) L_i + s_i; a noisier (larger) loss gets a smaller weight.

    At the optimum exp(-s_i) = 1 / L_i: each loss is divided by a learned estimate of its own size.
    """

    def __init__(self, names: Sequence[str], reduce: Reduce = _identity):
        super().__init__(names, reduce)
        self.log_vars = nn.Parameter(torch.zeros(len(self.names)))

    def combine(self, losses: dict[str, torch.Tensor], step: int, scales: dict[str, float] | None = None):
        log_vars = self.log_vars[self._index(losses).to(self.log_vars.device)]
        self.current = dict(zip(losses, torch.exp(-log_vars.detach()).tolist()))
        stacked = torch.stack(list(losses.values()))
        return (torch.exp(-log_vars) * stacked + log_vars).sum()


class DynamicWeightAverage(Weighting):
    """Liu et al. (CVPR 2019): a job whose loss fell less over the last window gets a larger weight.

    The loss of a window is its mean over `window` steps; r_i = (last window) / (the one before).
    A job with fewer than two finished windows has r_i = 1 (the paper: w = 1 for two epochs).
    """

    def __init__(self, names, reduce: Reduce = _identity, window: int = DWA_WINDOW, temperature=DWA_TEMPERATURE):
        super().__init__(names, reduce)
        self.window, self.temperature = window, temperature
        self.window_index = 0
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.history: dict[str, list[float]] = {}  # each job's last two window means, oldest first

    def combine(self, losses: dict[str, torch.Tensor], step: int, scales: dict[str, float] | None = None):
        if step // self.window != self.window_index:
            self._close_window(step // self.window)
        self.current = self._weights(list(losses))
        for name, value in _observe(losses, self.reduce).items():
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.counts[name] = self.counts.get(name, 0) + 1
        return sum(self.current[name] * term for name, term in _terms(losses, scales).items())

    def _close_window(self, index: int) -> None:
        for name, total in self.sums.items():
            self.history[name] = [*self.history.get(name, []), total / self.counts[name]][-2:]
        self.window_index, self.sums, self.counts = index, {}, {}

    def _weights(self, names: list[str]) -> dict[str, float]:
        ratios = torch.tensor([self._ratio(name) for name in names], dtype=torch.float64)
        weights = len(names) * torch.softmax(ratios / self.temperature, dim=0)
        return dict(zip(names, weights.tolist()))

    def _ratio(self, name: str) -> float:
        history = self.history.get(name, [])
        return history[1] / max(history[0], 1e-12) if len(history) == 2 else 1.0

    def get_extra_state(self) -> dict:
        return {"window_index": self.window_index, "sums": self.sums, "counts": self.counts, "history": self.history}

    def set_extra_state(self, state: dict) -> None:
        self.window_index = state["window_index"]
        self.sums, self.counts = dict(state["sums"]), dict(state["counts"])
        self.history = {name: list(values) for name, values in state["history"].items()}


class GradNorm(Weighting):
    """Chen et al. (ICML 2018): learnable w_i that equalise the jobs' gradient norms on a shared layer.

    g_i = |d(L_i / c_i) / dW| on the shared weight W; G_i = w_i g_i; the target of G_i is
    mean_j(G_j) * r_i^alpha, with r_i = (L_i / L_i(0)) / mean_j(L_j / L_j(0)) (a job that trains
    slower gets a larger target). The objective adds L_grad = sum_i |w_i g_i - target_i|, with g
    and the targets constants, so only the w_i learn from it, and the network sees sum_i w_i L_i
    with the w_i constants. A job whose gradient norm is above its target loses weight.
    """

    def __init__(self, names, shared: torch.Tensor, reduce: Reduce = _identity, alpha: float = GRADNORM_ALPHA):
        super().__init__(names, reduce)
        self.shared = [shared]  # a list: not registered, the network owns it
        self.alpha = alpha
        self.task_weights = nn.Parameter(torch.ones(len(self.names)))
        self.initial: dict[str, float] = {}  # L_i(0): each job's first loss
        self.active: list[str] = []

    def combine(self, losses: dict[str, torch.Tensor], step: int, scales: dict[str, float] | None = None):
        self.active = list(losses)
        terms = _terms(losses, scales)
        w = self.task_weights[self._index(losses).to(self.task_weights.device)]
        norms = self.reduce(torch.stack([self._grad_norm(term) for term in terms.values()]))
        targets = (w.detach() * norms).mean() * self._inverse_rates(losses) ** self.alpha
        self.current = dict(zip(losses, w.detach().tolist()))
        grad_loss = (w * norms - targets).abs().sum()
        return (w.detach() * torch.stack(list(terms.values()))).sum() + grad_loss

    def _grad_norm(self, term: torch.Tensor) -> torch.Tensor:
        (grad,) = torch.autograd.grad(term, self.shared, retain_graph=True, allow_unused=True)
        return torch.zeros((), device=term.device) if grad is None else grad.float().norm()

    def _inverse_rates(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        observed = _observe(losses, self.reduce)
        for name, value in observed.items():
            self.initial.setdefault(name, value)
        rates = torch.tensor([value / max(self.initial[name], 1e-12) for name, value in observed.items()])
        return (rates / rates.mean().clamp_min(1e-12)).to(self.task_weights.device)

    def after_step(self) -> None:
        """Keep the weights positive and renormalise them to sum to K over the current jobs."""
        if not self.active:
            return
        index = self._index(self.active).to(self.task_weights.device)
        with torch.no_grad():
            weights = self.task_weights[index].clamp_min(GRADNORM_MIN_WEIGHT)
            self.task_weights[index] = weights * len(self.active) / weights.sum()

    def get_extra_state(self) -> dict:
        return {"initial": self.initial}

    def set_extra_state(self, state: dict) -> None:
        self.initial = dict(state["initial"])


WEIGHTINGS = {"equal": Equal, "uncertainty": Uncertainty, "dwa": DynamicWeightAverage, "gradnorm": GradNorm}
assert tuple(WEIGHTINGS) == choices.WEIGHTINGS, "mixtask.choices lists the weightings, in this order"


def build_weighting(name: str, names: Sequence[str], net: nn.Module, reduce: Reduce = _identity) -> Weighting:
    """The `--weighting` method over the jobs `names`; GradNorm watches `net`'s last shared layer."""
    if name == "gradnorm":
        return GradNorm(names, last_shared_weight(net), reduce)
    return WEIGHTINGS[name](names, reduce)


def last_shared_weight(net: nn.Module) -> torch.Tensor:
    """GradNorm's W: `net.shared_weight()` where an architecture names one, else its last conv's weight.

    In the FiLM network every layer is shared by all tasks (the FiLM generator only modulates
    them), so the last shared layer is the output conv. An architecture with per-task parts
    (`unused_parameters`: a branch or mask per task) must name its last shared layer itself.
    """
    named = net.shared_weight()
    if named is not None:
        return named
    convs = [module for module in net.modules() if isinstance(module, nn.Conv2d)]
    if net.unused_parameters or not convs:
        raise MixtaskError(
            f"--weighting gradnorm needs the last layer every task shares, and {type(net).__name__} does not "
            "name one (it has per-task parts): use another --weighting, or give the network a shared_weight() method"
        )
    return convs[-1].weight
