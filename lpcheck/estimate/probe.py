"""The Probe: measure Assumptions 1, 3, 5 and 6 on any torch model, inside any training loop.

    probe = Probe(model, (x_train, y_train), batch_size=128, samples=16)   # once
    ...
    record = probe.measure(optimizer, step=t)   # now and then, between two optimizer steps
    ...
    constants = probe.fit(T=total_steps, lr_used=schedule)   # c1..c3, c~1..c~3, L, sigma; schedule: t -> lr

What f is. The probe fixes, once, a random partition of the training set into n_b = floor(n / b)
blocks of b examples (b = batch_size; the n - n_b b left-over examples are left out, the same ones
for the whole run) and measures
    f(theta) = (1/n_b) sum_j loss(model(x_{B_j}), y_{B_j}),
the mean mini-batch loss over the blocks. A stochastic gradient is the gradient of one block drawn
uniformly at random, so E[g | theta] = grad f(theta) holds exactly (Assumption 2) and the full
gradient is exact: one pass over the n_b blocks. In `mode="train"` (the default: the loss the
optimizer sees) BatchNorm normalises with each block's own statistics, as in a training step;
f then depends on the partition, which is why the partition is fixed. In `mode="eval"` BatchNorm
uses its running statistics, the loss is a plain sum over examples and f is the usual empirical risk
of the n_b b examples. Inputs are taken as they are (no augmentation): f is the training loss on the
un-augmented images, the objective the assumptions are about; the optimizer's augmented batches are
draws from a nearby distribution.

What a measurement does, at theta_t with the optimizer's state before step t (`measure`):
1. full pass: f(theta_t) and grad f(theta_t), accumulated in float64;
2. K = `samples` fresh blocks g_1..g_K; for each, on the fly: u = rescale(g) (eq. 21), the
   alignment <grad f, u>/||grad f||_2^2 and ||u||_p^2 (eq. 27-28); with LPSGDM's momentum buffer
   m_{t-1} (read from optimizer.state, fixed: eq. 43-44 condition on F_t), v = rescale(beta m_{t-1} +
   (1 - beta) g) and the same two numbers (eq. 43-44); the noise ||g - grad f||_q^2 (Assumption 3);
3. `step_pairs` smoothness pairs (theta_t, theta_t + Dtheta) with Dtheta the step the optimizer would
   take with sample j's direction, -lr (lambda theta + v_j) (eq. 25), each one more full pass; and
   the pair (previous measurement, theta_t). All ratios in the active geometry p_s (Lemma 1).
p, eps, beta, lr, lambda are read from the optimizer's param groups: p and eps must agree (one
geometry), while lr, lambda and beta may differ per group (e.g. no weight decay on norms and biases):
each step pair then moves every group by its own step, as the optimizer would. The model, its
parameters, its buffers (BatchNorm running statistics, num_batches_tracked), its .grad fields, the
global RNG and the optimizer are left exactly as they were: probing does not change training
(gradients are taken with torch.autograd.grad; buffers and RNG are restored).

Cost and memory. A measurement costs n_b + K + step_pairs * n_b forward-backward passes. It never
holds K x d: besides the model it keeps O(d) vectors only: theta_t, m_{t-1}, grad f in float64
(the running sum) and a float32 copy, the previous measurement's theta and grad f (for the
trajectory pair), one direction per step pair, and the current block's gradient with the few
temporaries of its statistics. The per-batch loop reads nothing back to the host (no .item(), no
finiteness test: a non-finite gradient makes the float64 sum or a statistic non-finite, which is
checked once per pass and raises NonFiniteGradientError naming the pass).

Distributed (torchrun, DDP). When torch.distributed is initialised, rank r of W computes the blocks
j = r, r + W, ... of the full pass and the samples k = r, r + W, ...; sums and per-sample values are
all-reduced (summed: each entry is computed by exactly one rank, with the same arithmetic as in one
process). A DistributedDataParallel model is probed through its .module (no gradient hooks), every
rank must hold the same data, model and optimizer state (as DDP guarantees), and the constants equal
the single-process ones up to the order of the float64 sums. SyncBatchNorm is not supported in train
mode (it would synchronise ranks that are computing different blocks).
"""

from __future__ import annotations

import time

import torch

from lpcheck import checks, grads, lp
from lpcheck.estimate import core, fit, smoothness
from lpcheck.optim import LPSGD, LPSGDM, NonFiniteGradientError

__all__ = ["Probe"]

_STATS = ("align", "moment", "noise", "noise_l2")
_STATS_M = ("align_m", "moment_m")


def _int_at_least(name, v, low):
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    return v


class _Tensors:
    def __init__(self, x, y):
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
            raise ValueError("data as a pair must be (inputs, targets) tensors")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"inputs and targets must have the same length, got {x.shape[0]} and {y.shape[0]}")
        self.x, self.y = x, y
        self.index_device = x.device  # indexing on the data's device: no host round trip

    def __len__(self):
        return self.x.shape[0]

    def batch(self, idx):
        return self.x[idx], self.y[idx]


class _MapDataset:
    """A map-style torch Dataset: collated on the host (the Dataset's own choice), moved to `device`."""

    def __init__(self, ds, device):
        self.ds, self.device = ds, torch.device(device)
        self.index_device = torch.device("cpu")  # the Dataset is indexed by Python ints

    def __len__(self):
        return len(self.ds)

    def batch(self, idx):
        x, y = torch.utils.data.default_collate([self.ds[i] for i in idx.tolist()])
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def _source(data, device):
    if isinstance(data, torch.utils.data.DataLoader):
        data = data.dataset  # its sampler and batch size are the training loop's; the probe has its own
    if isinstance(data, (tuple, list)) and len(data) == 2:
        src = _Tensors(*data)
    elif hasattr(data, "batch") and hasattr(data, "__len__"):
        src = data  # e.g. lpcheck.data.DeviceCifar
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        src = _MapDataset(data, device)
    else:
        raise ValueError("data must be (inputs, targets) tensors, a map-style Dataset, a DataLoader over one, "
                         f"or an object with batch(idx) and len(); got {type(data).__name__}")
    if len(src) == 0:
        raise ValueError("data is empty: the probe needs at least batch_size examples")
    return src


def _dist():
    """(rank, world size, is distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size(), True
    return 0, 1, False


def _sum_(t):
    if _dist()[2]:
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
    return t


def _geometry(optimizer, params):
    """(p, eps, epoch, groups): the one geometry of eq. 21 and each param group's own step.

    p and eps must agree across groups: Assumption 1, eq. 28 and Lemma 1 use one norm ||.||_p over all
    coordinates, and eq. 21 one (p, eps) (per-group p would be a block-wise geometry, with a norm over
    blocks of lp norms, that the paper does not analyse). lr, weight decay and momentum may differ (the
    usual no-decay-on-norms recipe): they change the step, not the geometry. Each group is
    {lr, weight_decay, beta (None for LPSGD), params (its parameter count), runs: [(start, end)] of
    its parameters in the flat vector}.
    """
    if not isinstance(optimizer, (LPSGD, LPSGDM)):
        raise ValueError(f"optimizer must be lpcheck.optim.LPSGD or LPSGDM, got {type(optimizer).__name__}")
    owned = {id(p) for g in optimizer.param_groups for p in g["params"]}
    if owned != {id(p) for p in params}:
        raise ValueError("the optimizer must hold exactly the model's trainable parameters")
    first = optimizer.param_groups[0]
    for g in optimizer.param_groups[1:]:
        for k in ("p", "eps", "epoch"):
            if g[k] != first[k]:
                raise ValueError(f"param groups disagree on {k} ({first[k]!r} vs {g[k]!r}): Assumptions 1 and 5-6 "
                                 "and Lemma 1 use one lp norm (and eq. 21 one p and eps) for all coordinates; "
                                 "per-group p is a block-wise geometry the paper does not analyse. Groups may differ "
                                 "in lr, weight_decay and momentum")
    lp.rho(first["p"])
    offset, where = 0, {}
    for p in params:
        where[id(p)] = (offset, offset + p.numel())
        offset += p.numel()
    momentum = isinstance(optimizer, LPSGDM)
    groups = [{"lr": float(g["lr"]), "weight_decay": float(g["weight_decay"]) if momentum else 0.0,
               "beta": float(g["momentum"]) if momentum else None, "params": sum(p.numel() for p in g["params"]),
               "runs": sorted(where[id(p)] for p in g["params"])} for g in optimizer.param_groups]
    return float(first["p"]), float(first["eps"]), int(first["epoch"]), groups


def _uniform(groups, key):
    """The groups' common value of `key`, or the list of their values where they differ."""
    values = [g[key] for g in groups]
    return values[0] if len(set(values)) == 1 else values


def _per_coordinate(groups, key, like):
    """`key` of each group as a vector over the flat parameters (only built where the groups differ)."""
    out = torch.empty_like(like)
    for g in groups:
        for start, end in g["runs"]:
            out[start:end] = g[key]
    return out


def _step(theta, v, groups):
    """The optimizer's step from theta with direction v, each group with its own lr and decay (eq. 22 / 25):
    theta (1 - lr lambda) - lr v."""
    if len({(g["lr"], g["weight_decay"]) for g in groups}) == 1:
        lr, wd = groups[0]["lr"], groups[0]["weight_decay"]
        return theta * (1.0 - lr * wd) - lr * v
    moved = torch.empty_like(theta)
    for g in groups:
        lr, wd = g["lr"], g["weight_decay"]
        for start, end in g["runs"]:
            moved[start:end] = theta[start:end] * (1.0 - lr * wd) - lr * v[start:end]
    return moved


class Probe:
    """Measures Assumptions 1, 3, 5, 6 at the points where `measure` is called (see the module docstring).

    Args:
        model: any torch.nn.Module (a DistributedDataParallel model is probed through .module).
        data: (inputs, targets) tensors, a map-style Dataset or a DataLoader over one, or an object with
            batch(idx) -> (inputs, targets) and len() (lpcheck.data.DeviceCifar). Tensors on the model's
            device keep the whole probe on that device.
        batch_size: b, the block size (use the training batch size: the optimizer's g_t).
        samples: K >= 1 fresh blocks per measurement (K >= 2 for `fit`: its intervals bootstrap the K blocks).
        loss_fn: loss(outputs, targets), a mean over the batch (default: cross-entropy).
        mode: "train" (BatchNorm with block statistics, the default) or "eval" (running statistics).
        step_pairs: smoothness pairs along the optimizer's own step per measurement (<= samples).
        seed: seeds the partition and the block draws (the probe's own generator; the global RNG
            is untouched).
        loss_lower_bound: f* or a lower bound on it, for delta = f(theta_0) - f* in Theorems 1-2. None
            (the default) takes 0, right for a non-negative loss (cross-entropy, squared error); a
            loss that can be negative needs it. A measured loss below it (below 0 by default) is a
            ValueError at that measurement, before anything changes.
    """

    def __init__(self, model, data, *, batch_size=128, samples=16, loss_fn=None, mode="train", step_pairs=1, seed=0,
                 loss_lower_bound=None):
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.module = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        self.batch_size = _int_at_least("batch_size", batch_size, 1)
        self.samples = _int_at_least("samples", samples, 1)
        self.step_pairs = _int_at_least("step_pairs", step_pairs, 0)
        if self.step_pairs > self.samples:
            raise ValueError(f"step_pairs must be <= samples ({self.samples}), got {step_pairs}")
        self.mode, self.seed = mode, checks.integer("seed", seed, low=0)
        self.loss_lower_bound = None if loss_lower_bound is None else checks.real("loss_lower_bound", loss_lower_bound)
        if loss_fn is not None and not callable(loss_fn):
            raise ValueError(f"loss_fn must be a callable loss(outputs, targets), got {type(loss_fn).__name__}")
        self.loss_fn = loss_fn or torch.nn.functional.cross_entropy
        self.params = grads.parameters(self.module)
        self.device = self.params[0].device
        self.source = _source(data, self.device)
        n = len(self.source)
        self.n_blocks = n // self.batch_size
        if self.n_blocks < 1:
            raise ValueError(f"data has {n} examples, fewer than one batch (batch_size = {self.batch_size})")
        if mode == "train" and _dist()[2] and any(isinstance(m, torch.nn.SyncBatchNorm) for m in self.module.modules()):
            raise ValueError("SyncBatchNorm in train mode is not supported by the distributed probe; use mode='eval'")
        self.generator = torch.Generator().manual_seed(seed)
        perm = torch.randperm(n, generator=self.generator)[: self.n_blocks * self.batch_size]
        index_device = getattr(self.source, "index_device", getattr(self.source, "device", torch.device("cpu")))
        self.blocks = perm.view(self.n_blocks, self.batch_size).to(index_device)
        self.records: list[dict] = []
        self._prev = None  # (theta, grad f (float64), f) of the previous measurement, for the trajectory pair

    # -- passes ------------------------------------------------------------------------------

    def _block_grad(self, j):
        x, y = self.source.batch(self.blocks[j])
        loss = self.loss_fn(self.module(x), y)
        g = grads.flat_grad(loss, self.params)
        return loss.detach(), g.float() if g.dtype in (torch.float16, torch.bfloat16) else g

    def _full(self, what):
        """f and grad f over all blocks (this rank's share, then all-reduced), in float64."""
        rank, world, _ = _dist()
        acc = torch.zeros(sum(p.numel() for p in self.params) + 1, dtype=torch.float64, device=self.device)
        for j in range(rank, self.n_blocks, world):
            loss, g = self._block_grad(j)
            acc[:-1].add_(g)
            acc[-1].add_(loss)
        _sum_(acc).div_(self.n_blocks)
        if not bool(torch.isfinite(acc).all()):
            raise NonFiniteGradientError(f"Probe: non-finite loss or gradient (inf or nan) in the {what}")
        return acc[-1].item(), acc[:-1]

    # -- the measurement ---------------------------------------------------------------------

    def measure(self, optimizer, *, step: int) -> dict:
        """Measure at the model's current parameters, before optimizer step `step` (t); returns the record.

        The record (also appended to `self.records`) is JSON-ready: step, epoch, p, eps, beta, lr,
        K, loss, grad_sq, grad_norm_q, samples (K values per statistic), pairs, cost and seconds.
        """
        _int_at_least("step", step, 0)
        p, eps, epoch, groups = _geometry(optimizer, self.params)
        start = time.perf_counter()
        theta = grads.flat_params(self.params)
        if theta.dtype in (torch.float16, torch.bfloat16):  # statistics in float32 at least
            theta = theta.float()
        beta = _uniform(groups, "beta")
        if isinstance(beta, list):  # per-group momentum: eq. 41 coordinate by coordinate
            beta = _per_coordinate(groups, "beta", theta)
        m = grads.flat_state(optimizer, self.params, "momentum_buffer").to(theta.dtype) if beta is not None else None
        buffers = [b.detach().clone() for b in self.module.buffers()]
        was_training = self.module.training
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            self.module.train(self.mode == "train")
            with torch.random.fork_rng(devices=devices):
                record = self._measure(theta, m, p, eps, beta, groups)
        finally:
            grads.set_flat_params(self.params, theta)
            with torch.no_grad():
                for b, saved in zip(self.module.buffers(), buffers):
                    b.copy_(saved)
            self.module.train(was_training)
        # lr: the largest group's, the step compared with Theorem 1's cap; each group's step is in `groups`
        record = {"step": step, "epoch": epoch, "p": p, "q": lp.dual_exponent(p), "eps": eps,
                  "beta": _uniform(groups, "beta"), "lr": max(g["lr"] for g in groups),
                  "weight_decay": _uniform(groups, "weight_decay"), "mode": self.mode, "K": self.samples,
                  "batch_size": self.batch_size, "blocks": self.n_blocks,
                  "groups": [{k: g[k] for k in ("params", "lr", "weight_decay", "beta")} for g in groups], **record}
        record["passes"] = self.n_blocks * (1 + len([pr for pr in record["pairs"] if pr["kind"] == "step"])) + self.samples
        record["seconds"] = time.perf_counter() - start
        self.records.append(record)
        return record

    def _measure(self, theta, m, p, eps, beta, groups):
        loss, full = self._full("full-gradient pass")
        self._check_loss(loss)  # before any draw: a refused measurement leaves the probe as it was
        f32 = full.to(theta.dtype)
        f_sq = (f32 * f32).sum()
        grad_sq = float((full * full).sum())
        if grad_sq == 0:
            raise ValueError("the full gradient is zero: the alignment ratios of eq. 27/43 are undefined here")
        names = _STATS + (_STATS_M if m is not None else ())
        stats = torch.zeros(len(names), self.samples, dtype=torch.float64, device=self.device)
        rank, world, _ = _dist()
        draws = torch.randint(self.n_blocks, (self.samples,), generator=self.generator).tolist()
        directions = {}
        for k in range(rank, self.samples, world):
            _, g = self._block_grad(draws[k])
            with torch.no_grad():
                s = core._statistics(f32, f_sq, g.unsqueeze(0), p, eps, None if m is None else m.unsqueeze(0), beta)
                stats[:, k] = torch.cat([s[name] for name in names]).to(torch.float64)
                if k < self.step_pairs:  # the step the optimizer would take with this sample (eq. 22 / 25)
                    direction = g if m is None else core._mix(g, m, beta)
                    directions[k] = lp.rescale(direction, p, eps, check_finite=False)
        _sum_(stats)
        values = stats.cpu()
        if not bool(torch.isfinite(values).all()):
            bad = sorted({int(k) for k in torch.nonzero(~torch.isfinite(values))[:, 1]})
            raise NonFiniteGradientError(f"Probe: non-finite stochastic gradient (inf or nan) in sample(s) {bad} "
                                         f"(blocks {[draws[k] for k in bad]})")
        record = {"loss": loss, "grad_sq": grad_sq,
                  "grad_norm_q": float(lp.lp_norm(full, lp.dual_exponent(p), check_finite=False)),
                  "samples": {name: values[i].tolist() for i, name in enumerate(names)}, "pairs": []}
        for j in range(self.step_pairs):
            v = directions.get(j, torch.zeros_like(theta))
            if _dist()[2]:
                torch.distributed.broadcast(v, src=j % world)
            moved = _step(theta, v, groups)
            if bool(torch.equal(moved, theta)):
                continue  # lr = 0: no step, no pair
            grads.set_flat_params(self.params, moved)
            loss_y, full_y = self._full(f"smoothness pair {j} (the step with sample {j})")
            record["pairs"].append({"kind": "step", **self._pair(theta, moved, loss, loss_y, full, full_y, p)})
        if self._prev is not None:
            theta_x, full_x, loss_x = self._prev
            if not bool(torch.equal(theta_x, theta)):
                record["pairs"].append({"kind": "trajectory", **self._pair(theta_x, theta, loss_x, loss, full_x, full, p)})
        self._prev = (theta, full, loss)
        return record

    def _check_loss(self, loss):
        bound = 0.0 if self.loss_lower_bound is None else self.loss_lower_bound
        if loss < bound:
            if self.loss_lower_bound is None:
                raise ValueError(f"the loss f = {loss:.6g} is negative, so the default lower bound f* >= 0 does "
                                 "not hold: pass Probe(..., loss_lower_bound=...) (f* or a lower bound on it; "
                                 "Theorems 1-2 need delta = f(theta_0) - f*)")
            raise ValueError(f"loss_lower_bound = {bound:.6g} is above the measured loss f = {loss:.6g}: it is not a "
                             "lower bound on f*")

    @staticmethod
    def _pair(x, y, f_x, f_y, g_x, g_y, p):
        s = smoothness.pair_statistics(x.double(), y.double(), f_x, f_y, g_x, g_y, p)
        return {k: float(v) for k, v in s.items()}

    # -- fitting and resuming ----------------------------------------------------------------

    def fit(self, T, **kwargs) -> dict:
        """The constants over all measurements so far (`lpcheck.estimate.fit.fit_run`), for a run of T steps.

        Pass lr_used (the run's peak lr, a callable t -> lr, or the T per-step lrs): the step cap is
        compared with the largest lr of the whole run, which the checkpoints alone may miss (without it
        the comparison is left out, with the reason). loss_lower_bound defaults to the probe's.
        """
        kwargs.setdefault("loss_lower_bound", self.loss_lower_bound)
        return fit.fit_run(self.records, T, **kwargs)

    def state_dict(self) -> dict:
        """What a resumed run needs: the records, the probe's generator and the previous point."""
        prev = None if self._prev is None else {"theta": self._prev[0].cpu(), "grad": self._prev[1].cpu(), "loss": self._prev[2]}
        return {"records": self.records, "generator": self.generator.get_state(), "prev": prev,
                "seed": self.seed, "batch_size": self.batch_size, "mode": self.mode}

    def load_state_dict(self, state: dict) -> None:
        for k in ("seed", "batch_size", "mode"):
            if state[k] != getattr(self, k):
                raise ValueError(f"cannot resume: the saved probe has {k} = {state[k]!r}, this one {getattr(self, k)!r}")
        self.records = list(state["records"])
        self.generator.set_state(state["generator"])
        prev = state["prev"]
        self._prev = None if prev is None else (prev["theta"].to(self.device), prev["grad"].to(self.device), prev["loss"])
