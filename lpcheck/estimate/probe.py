"""The Probe: measure Assumptions 1, 3, 5 and 6 on any torch model, inside any training loop.

    probe = Probe(model, (x_train, y_train), batch_size=128, samples=16)   # once
    ...
    record = probe.measure(optimizer, step=t)   # now and then, between two optimizer steps
    ...
    # c1..c3, c~1..c~3, L, sigma; schedule: t -> lr
    constants = probe.fit(T=total_steps, lr_used=schedule)

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
draws from a nearby distribution. Random numbers a forward pass draws (dropout, in train mode), and
a Dataset's transforms drawing from torch's generator, are block j's own (the probe's seed and j),
the same at every point: f stays one deterministic function
of theta, as the fixed partition keeps BatchNorm's, so its gradient is exact and the smoothness
pairs compare one function at two points. K = `samples` is at most n_b: the K uniform draws (with
replacement) stand for independent samples of the noise, and more draws than blocks would count
repeated blocks as new evidence (a ValueError naming samples and n_b).

A parameter a block's loss does not reach (an unused branch; autograd gives it no gradient) is
measured as torch's step treats a parameter whose .grad is None: no direction, no momentum or weight
decay, no move in the step pairs (`directions.Plan.direction(..., missing)`); its full-gradient
block is 0.

Any optimizer. `measure` takes any torch.optim.Optimizer (or a lpcheck.methods.Method with its
state, lr and weight decay) and measures it in its own geometry. Its direction d(g) for a fresh
gradient g is the method's, with the optimizer's state S_{t-1} before step t fixed: eq. 43-44's
conditioning on F_t, which holds the state (LPSGDM's m_{t-1}, Adam's moments and step count, ...).
Built-ins are read as their layer method (lpcheck.methods: a few multi-tensor ops per sample), any
other class through the black box (one step of a copy of the optimizer per sample, exact and
slower); `lpcheck.estimate.directions` says which classes and why. Coupled weight decay (torch
SGD/Adam/RMSprop: g + lambda theta) is part of d, decoupled decay (LPSGDM, AdamW, Lion) the step's
factor 1 - lr lambda, as each optimizer steps.

What a measurement does, at theta_t with the optimizer's state before step t (`measure`):
1. full pass: f(theta_t) and grad f(theta_t), accumulated in float64;
2. K = `samples` fresh blocks g_1..g_K; for each, on the fly, the method's direction d_k = d(g_k)
   and (Assumption 5 in the method's norm ||.||, dual ||.||_*) the alignment <grad f, d_k> / phi,
   the second moment ||d_k||^2 and the noise ||g_k - grad f||_*^2 (Assumption 3), with
   phi = ||grad f||_*^2;
3. `step_pairs` smoothness pairs (theta_t, theta_t + Dtheta) with Dtheta the step the optimizer
   would take with sample j's direction, -lr (lambda theta + d_j) (each group its own lr and
   decoupled lambda), each one more full pass; and the pair (previous measurement, theta_t). The
   ratios of Assumption 1 in ||.||: 2 (f(y) - f(x) - <grad f(x), y - x>) / ||y - x||^2 (eq. 4, L),
   ||grad f(y) - grad f(x)||_* / ||y - x|| and the (L0, L1) form with ||grad f||_*.

Which norm, for which method. Theorem 1's proof works in any norm: its descent step (Lemma 2) takes
L (Assumption 1) and ||d|| in one norm, and eq. 27-28 one measure phi of the gradient, whose mean
the theorem then bounds. So every quantity is read in the method's own norm ||.|| (`Method.norm` at
S_{t-1}, fixed given F_t) and phi is the dual norm's square, which makes steepest descent in ||.||
exact (d = grad f^#: alignment 1, ||d||^2 = phi):
    LPSGD, LPSGDM (the paper's forms, kept as eq. 27-28 and 43-44 state them): ||u||_p, ||v||_p, L
        in lp at the active p (eq. 19, Lemma 1), sigma in lq, phi = ||grad f||_2^2; LPSGDM's records
        hold both u = eq. 21 of g (Assumption 5: 'align', 'moment') and v = eq. 42 (Assumption 6:
        'align_m', 'moment_m');
    SGD, SGDM, heavy ball (torch SGD): l2 (phi = ||grad f||_2^2, as the paper at p = 2);
    steepest (eq. 10) at p: lp, dual lq;
    Adam, AdamW, RMSprop: the ellipsoid ||x||_A = sqrt(sum a_j x_j^2), a = sqrt(v^_{t-1}) + eps from
        the state before the step (Kohler, Adolphs & Lucchi), dual sqrt(sum g_j^2 / a_j); at t = 0
        (v = 0) a = eps;
    sign descent, Signum, Lion: linf, dual l1;
    Scion, the clipped step: the layerwise norm max_l n_l(x_l) / radius (spectral for matrices, the
        `vector` norm for vectors), dual radius * sum_l n_l^*(g_l) (nuclear for matrices);
    the black box: the norm lpcheck knows for its class (lp for an LPSGD subclass, an as_optimizer
        optimizer's method's), else l2.
`Probe(..., norm="l2" | "linf" | "l1" | "lp:P" | "spectral")` reads every quantity in that norm and
its dual instead, phi = ||grad f||_*^2 included (LPSGD/LPSGDM too: their records then hold v alone,
under 'align'). Sign, Lion, Scion and the unconstrained clipped step move along an LMO: ||d|| <= 1
in their own norm whatever the gradient, so `fit` gives them the pair c3 = 0 and no step cap
(`fit.fit_run`). Each record says what it measured: method, optimizer, source ('layer' or
'blackbox', and `fallback` with the reason where a built-in class had to use the black box), norm,
norm_from ('method' or 'override'), phi ('l2': the paper's, 'dual') and directions ('scaled' or
'bounded'); p and q where the norm is an lp norm.

lr, lambda and the method's hyperparameters are read from the optimizer's param groups and may
differ per group (e.g. no weight decay on norms and biases): each step pair then moves every group
by its own step, as the optimizer would. Groups must give one norm (LPSGD/LPSGDM: one p and eps:
Assumption 1 and Lemma 1 use one lp norm, per-group p is a block-wise geometry the paper does not
analyse). The model, its parameters, its buffers (BatchNorm running statistics,
num_batches_tracked), its .grad fields, the global RNG and the optimizer are left exactly as they
were: probing does not change training (gradients are taken with torch.autograd.grad; buffers and
RNG are restored; the black box steps a copy).

Cost and memory. A measurement costs n_b + K + step_pairs * n_b forward-backward passes (and, for
the black box, K optimizer steps on a copy: `direction_seconds` adds up the directions' host time).
It never holds K x d: besides the model it keeps O(d) vectors only: theta_t, the state S_{t-1}, grad
f in float64 (the running sum) and a float32 copy, the previous measurement's theta and grad f (for
the trajectory pair), one direction per step pair, and the current block's gradient with the few
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
import warnings
from collections.abc import Callable
from typing import Any

import torch

from lpcheck import checks, grads, lp, userspec
from lpcheck import methods as M
from lpcheck.estimate import core, directions, fit, smoothness
from lpcheck.optim import NonFiniteGradientError
from lpcheck.training import collated_pair

__all__ = ["Probe"]

_STATS = ("align", "moment", "noise", "noise_l2")
_STATS_M = ("align_m", "moment_m")


def _int_at_least(name: Any, v: Any, low: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    return v


class _Tensors:
    def __init__(self, x: Any, y: Any) -> None:
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
            raise ValueError("data as a pair must be (inputs, targets) tensors")
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"inputs and targets must have the same length, got {x.shape[0]} and {y.shape[0]}"
            )
        # inf or nan in a row: a NonFiniteGradientError from the first full pass, not naming data
        userspec.check_finite(x, "its inputs", "data")
        userspec.check_finite(y, "its targets", "data")
        self.x, self.y = x, y
        self.index_device = x.device  # indexing on the data's device: no host round trip

    def __len__(self) -> Any:
        return self.x.shape[0]

    def batch(self, idx: Any) -> Any:
        return self.x[idx], self.y[idx]


class _MapDataset:
    """A map-style torch Dataset: collated on the host (the Dataset's own choice), moved to
    `device`."""

    def __init__(self, ds: Any, device: Any) -> None:
        self.ds, self.device = ds, torch.device(device)
        self.index_device = torch.device("cpu")  # the Dataset is indexed by Python ints

    def __len__(self) -> Any:
        return len(self.ds)

    def batch(self, idx: Any) -> Any:
        items = torch.utils.data.default_collate([self.ds[i] for i in idx.tolist()])
        x, y = collated_pair(items)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def _source(data: Any, device: Any) -> Any:
    if isinstance(data, torch.utils.data.DataLoader):
        data = (
            data.dataset
        )  # its sampler and batch size are the training loop's; the probe has its own
    if isinstance(data, (tuple, list)) and len(data) == 2:
        src: Any = _Tensors(*data)
    elif hasattr(data, "batch") and hasattr(data, "__len__"):
        src = data  # e.g. lpcheck.data.DeviceCifar
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        src = _MapDataset(data, device)
    else:
        raise ValueError(
            "data must be (inputs, targets) tensors, a map-style Dataset, a DataLoader over one, "
            f"or an object with batch(idx) and len(); got {type(data).__name__}"
        )
    if len(src) == 0:
        raise ValueError("data is empty: the probe needs at least batch_size examples")
    return src


def _dist() -> Any:
    """(rank, world size, is distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size(), True
    return 0, 1, False


def _sum_(t: Any) -> Any:
    if _dist()[2]:
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
    return t


def _uniform(groups: Any, key: Any) -> Any:
    """The groups' common value of `key`, or the list of their values where they differ."""
    values = [g[key] for g in groups]
    return values[0] if len(set(values)) == 1 else values


class Probe:
    """Measures Assumptions 1, 3, 5, 6 at the points where `measure` is called, for any optimizer in
    its own geometry (see the module docstring: which quantity, in which norm, for which method).

    Per measurement, for the method's direction d (state before the step fixed) in its norm ||.||
    with dual ||.||_*: alignment <grad f, d>/phi (phi = ||grad f||_*^2; ||grad f||_2^2 for
    LPSGD/LPSGDM, eq. 27/43), moment ||d||^2 (||u||_p^2, ||v||_p^2: eq. 28/44), noise
    ||g - grad f||_*^2 (Assumption 3), and along the optimizer's step the ratios of Assumption 1 in
    ||.|| (L, the gradient form, (L0, L1)).

    Args:
        model: any torch.nn.Module (a DistributedDataParallel model is probed through .module).
        data: (inputs, targets) tensors, a map-style Dataset or a DataLoader over one, or an object
            with batch(idx) -> (inputs, targets) and len() (lpcheck.data.DeviceCifar). Tensors on
            the model's device keep the whole probe on that device.
        batch_size: b, the block size (use the training batch size: the optimizer's g_t).
        samples: K >= 1 fresh blocks per measurement (K >= 2 for `fit`: its intervals are over the K
            blocks).
        loss_fn: loss(outputs, targets), a mean over the batch (default: cross-entropy).
        mode: "train" (BatchNorm with block statistics, the default) or "eval" (running statistics).
        step_pairs: smoothness pairs along the optimizer's own step per measurement (<= samples).
        seed: seeds the partition and the block draws (the probe's own generator; the global RNG
            is untouched).
        loss_lower_bound: f* or a lower bound on it, for delta = f(theta_0) - f* in Theorems 1-2.
            None (the default) takes 0, right for a non-negative loss (cross-entropy, squared
            error); a loss that can be negative needs it. A measured loss below it (below 0 by
            default) is a ValueError at that measurement, before anything changes.
        norm: None (each method's own norm) or a norm for every quantity instead: 'l2', 'linf',
            'l1', 'lp:P' (P in [1, inf]), 'spectral', or a lpcheck.methods.Norm
            (`lpcheck.methods.parse_norm`).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        data: Any,
        *,
        batch_size: int = 128,
        samples: int = 16,
        loss_fn: Callable[..., torch.Tensor] | None = None,
        mode: str = "train",
        step_pairs: int = 1,
        seed: int = 0,
        loss_lower_bound: float | None = None,
        norm: str | None = None,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.module = (
            model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
        )
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        self.batch_size = _int_at_least("batch_size", batch_size, 1)
        self.samples = _int_at_least("samples", samples, 1)
        self.step_pairs = _int_at_least("step_pairs", step_pairs, 0)
        if self.step_pairs > self.samples:
            raise ValueError(f"step_pairs must be <= samples ({self.samples}), got {step_pairs}")
        self.mode, self.seed = mode, checks.integer("seed", seed, low=0)
        self.loss_lower_bound = (
            None if loss_lower_bound is None else checks.real("loss_lower_bound", loss_lower_bound)
        )
        self.norm = None if norm is None else M.parse_norm(norm)
        if loss_fn is not None and not callable(loss_fn):
            raise ValueError(
                f"loss_fn must be a callable loss(outputs, targets), got {type(loss_fn).__name__}"
            )
        self.loss_fn = loss_fn or torch.nn.functional.cross_entropy
        self._loss_name = "cross-entropy (the default loss_fn)" if loss_fn is None else "loss_fn"
        self._loss_checked = False
        self.params = grads.parameters(self.module)
        self.device = self.params[0].device
        self.source = _source(data, self.device)
        n = len(self.source)
        self.n_blocks = n // self.batch_size
        if self.n_blocks < 1:
            raise ValueError(
                f"data has {n} examples, fewer than one batch (batch_size = {self.batch_size})"
            )
        if self.samples > self.n_blocks:
            raise ValueError(too_many_samples(self.samples, n, self.batch_size, "samples"))
        if (
            mode == "train"
            and _dist()[2]
            and any(isinstance(m, torch.nn.SyncBatchNorm) for m in self.module.modules())
        ):
            raise ValueError(
                "SyncBatchNorm in train mode is not supported by the distributed probe; use "
                "mode='eval'"
            )
        self.generator = torch.Generator().manual_seed(seed)
        perm = torch.randperm(n, generator=self.generator)[: self.n_blocks * self.batch_size]
        index_device = getattr(
            self.source, "index_device", getattr(self.source, "device", torch.device("cpu"))
        )
        self.blocks = perm.view(self.n_blocks, self.batch_size).to(index_device)
        self.records: list[dict] = []
        # (theta, grad f (float64), f) of the previous measurement, for the trajectory pair
        self._prev: tuple[torch.Tensor, torch.Tensor, float] | None = None
        self.direction_seconds = (
            0.0  # host time spent computing directions (the black box's overhead shows here)
        )

    # -- passes ------------------------------------------------------------------------------

    def _block_grad(self, j: Any) -> Any:
        """(loss, flat gradient, the positions of the parameters the block's loss does not reach)
        of block j. The random numbers its forward draws (dropout) and a map-style Dataset's
        transforms draw from torch's generator are block j's own, the same at every point: f is
        then one function of theta (common random numbers, as the fixed partition makes
        BatchNorm's statistics), its full gradient exact and its differences between two points
        smooth; a fresh draw per pass would put the masks' noise into every difference
        (Assumption 1's ratios above all). Python's `random` and numpy's generators are not
        torch's: a transform drawing from them still changes f between passes."""
        self._seed_block(j)  # first: a Dataset's random transforms (torch's RNG) are fixed too
        x, y = self.source.batch(self.blocks[j])
        out = self.module(x)
        if self._loss_checked:
            loss = self.loss_fn(out, y)
        else:  # the first call names a loss that cannot take these outputs, or broadcasts them
            loss = checked_loss(self.loss_fn, out, y, self._loss_name, "loss_fn=")
            self._loss_checked = True
        g, missing = grads.flat_grad_unreached(loss, self.params)
        g = g.float() if g.dtype in (torch.float16, torch.bfloat16) else g
        # a one-element loss of shape (1,) (torch's autograd takes it) sums as the scalar it is
        return loss.detach().reshape(()), g, missing

    def _seed_block(self, j: Any) -> None:
        seed = (self.seed * 1_000_003 + int(j)) % (2**63)
        torch.default_generator.manual_seed(seed)
        if self.device.type == "cuda":
            with torch.cuda.device(self.device):
                torch.cuda.manual_seed(seed)

    def _full(self, what: Any) -> Any:
        """f and grad f over all blocks (this rank's share, then all-reduced), in float64."""
        rank, world, _ = _dist()
        acc = torch.zeros(
            sum(p.numel() for p in self.params) + 1, dtype=torch.float64, device=self.device
        )
        for j in range(rank, self.n_blocks, world):
            loss, g, _ = self._block_grad(j)
            acc[:-1].add_(g)
            acc[-1].add_(loss)
        _sum_(acc).div_(self.n_blocks)
        if not bool(torch.isfinite(acc).all()):
            raise NonFiniteGradientError(
                f"Probe: non-finite loss or gradient (inf or nan) in the {what}"
            )
        return acc[-1].item(), acc[:-1]

    # -- the measurement ---------------------------------------------------------------------

    def measure(
        self,
        optimizer: Any,
        *,
        step: int,
        state: Any = None,
        lr: float | None = None,
        weight_decay: float | None = None,
    ) -> dict:
        """Measure at the model's current parameters, before optimizer step `step` (t); returns the
        record.

        `optimizer`: any torch.optim.Optimizer over exactly the model's trainable parameters (its
        param groups and state as they are before step t), or a lpcheck.methods.Method with its
        `state` (its `init` format over the model's trainable parameters, in `model.parameters()`
        order; default: a fresh one), the step size `lr` and the decoupled `weight_decay` (default
        0) of the run.

        The record (also appended to `self.records`) is JSON-ready: step, epoch, p, q, eps, beta,
        lr, weight_decay, groups, method, optimizer, norm, phi, directions, source, K, loss,
        grad_sq, grad_norm_q, samples (K values per statistic), pairs, passes and seconds (module
        docstring).
        """
        _int_at_least("step", step, 0)
        plan = directions.plan(
            optimizer, self.params, state=state, lr=lr, weight_decay=weight_decay
        )
        geometry = self._geometry(plan)  # checked before any work
        start = time.perf_counter()
        theta = grads.flat_params(self.params)
        if theta.dtype in (torch.float16, torch.bfloat16):  # statistics in float32 at least
            theta = theta.float()
        buffers = [b.detach().clone() for b in self.module.buffers()]
        was_training = self.module.training
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            self.module.train(self.mode == "train")
            with torch.random.fork_rng(devices=devices):
                record = self._measure(theta, plan, geometry)
        finally:
            grads.set_flat_params(self.params, theta)
            with torch.no_grad():
                for b, saved in zip(self.module.buffers(), buffers):
                    b.copy_(saved)
            self.module.train(was_training)
        record = {**self._describe(step, plan, geometry), **record}
        record["passes"] = (
            self.n_blocks * (1 + len([pr for pr in record["pairs"] if pr["kind"] == "step"]))
            + self.samples
        )
        record["seconds"] = time.perf_counter() - start
        self.direction_seconds += plan.seconds
        self.records.append(record)
        return record

    def _geometry(self, plan: Any) -> Any:
        """The measurement's geometry: the paper's (p, for LPSGD/LPSGDM in their own lp norm) or a
        FlatNorm."""
        if self.norm is None:
            if plan.paper_error or plan.norm_error:  # per-group p: no one norm of its own
                raise ValueError(plan.paper_error or plan.norm_error)
            if plan.paper is not None:
                return plan.paper["p"]
        return core.FlatNorm(
            plan.norm if self.norm is None else self.norm, [tuple(p.shape) for p in self.params]
        )

    def _describe(self, step: Any, plan: Any, geometry: Any) -> Any:
        """The record's description of what was measured (the keys before the measured values)."""
        groups = plan.groups
        paper = isinstance(geometry, float)
        # lr: the largest group's, the step compared with Theorem 1's cap; each group's step is in
        # `groups`
        out = {"step": step}
        if paper:
            p = plan.paper["p"]
            out.update(
                epoch=plan.paper["epoch"],
                p=p,
                q=lp.dual_exponent(p),
                eps=plan.paper["eps"],
                beta=_uniform(groups, "beta"),
            )
        else:
            base = geometry.base
            p = base.p if isinstance(base, M.Lp) else None
            out.update(
                epoch=_uniform(groups, "epoch"),
                p=p,
                q=None if p is None else base.q,
                eps=None,
                beta=None,
            )
        out.update(
            lr=max(g["lr"] for g in groups),
            weight_decay=_uniform(groups, "weight_decay"),
            mode=self.mode,
            K=self.samples,
            batch_size=self.batch_size,
            blocks=self.n_blocks,
        )
        keys = (
            ("params", "lr", "weight_decay", "beta")
            if paper
            else ("params", "lr", "weight_decay", "coupled_weight_decay", "spec")
        )
        out["groups"] = [{k: g[k] for k in keys} for g in groups]
        out.update(
            method=plan.name,
            optimizer=plan.optimizer,
            source=plan.source,
            norm=repr(M.Lp(geometry)) if paper else repr(geometry),
            norm_from="override" if self.norm else "method",
            phi="l2" if paper else "dual",
            directions="bounded" if plan.bounded else "scaled",
        )
        if not paper:
            out["spec"] = plan.spec
        if plan.fallback:
            out["fallback"] = plan.fallback
        return out

    def _measure(self, theta: Any, plan: Any, geometry: Any) -> Any:
        loss, full = self._full("full-gradient pass")
        self._check_loss(loss)  # before any draw: a refused measurement leaves the probe as it was
        f32 = full.to(theta.dtype)
        grad_sq = float((full * full).sum())
        names, phi, grad_dual = _measure_of(full, f32, theta, plan, geometry)
        if grad_sq == 0 or not bool(phi > 0):
            raise ValueError(
                "the full gradient is zero: the alignment ratios of eq. 27/43 are undefined here"
            )
        values, steps = self._sample_statistics(theta, plan, geometry, f32, phi, names)
        record = {
            "loss": loss,
            "grad_sq": grad_sq,
            "grad_norm_q": grad_dual,
            "samples": {name: values[i].tolist() for i, name in enumerate(names)},
            "pairs": [],
        }
        self._step_pairs(record, theta, plan, steps, loss, full, geometry)
        if self._prev is not None:
            theta_x, full_x, loss_x = self._prev
            if not bool(torch.equal(theta_x, theta)):
                record["pairs"].append(
                    {
                        "kind": "trajectory",
                        **self._pair(theta_x, theta, loss_x, loss, full_x, full, geometry),
                    }
                )
        self._prev = (theta, full, loss)
        return record

    def _sample_statistics(
        self, theta: Any, plan: Any, geometry: Any, f32: Any, phi: Any, names: Any
    ) -> Any:
        """(the K samples' statistics, a names x K float64 CPU tensor; {sample: its step} for the
        first step_pairs samples). Each rank computes its share of the samples; one sum gathers
        them."""
        paper = isinstance(geometry, float)
        stats = torch.zeros(len(names), self.samples, dtype=torch.float64, device=self.device)
        rank, world, _ = _dist()
        draws = torch.randint(self.n_blocks, (self.samples,), generator=self.generator).tolist()
        steps = {}
        for k in range(rank, self.samples, world):
            _, g, missing = self._block_grad(draws[k])
            with torch.no_grad():
                if paper:
                    p, eps, beta = (plan.paper[key] for key in ("p", "eps", "beta"))
                    m = plan.momentum(missing)
                    s = core._statistics(
                        f32,
                        phi,
                        g.unsqueeze(0),
                        p,
                        eps,
                        None if m is None else m.unsqueeze(0),
                        beta,
                    )
                    if (
                        k < self.step_pairs
                    ):  # the step the optimizer would take with this sample (eq. 22 / 25)
                        steps[k] = (plan.direction(g, theta, missing), missing)
                else:
                    d = plan.direction(g, theta, missing).to(g.dtype)
                    s = core._geometry_statistics(
                        f32, phi, g.unsqueeze(0), d.unsqueeze(0), geometry
                    )
                    if k < self.step_pairs:
                        steps[k] = (d, missing)
                stats[:, k] = torch.cat([s[name].reshape(-1) for name in names]).to(torch.float64)
        _sum_(stats)
        values = stats.cpu()
        if not bool(torch.isfinite(values).all()):
            bad = sorted({int(k) for k in torch.nonzero(~torch.isfinite(values))[:, 1]})
            raise NonFiniteGradientError(
                f"Probe: non-finite stochastic gradient (inf or nan) in sample(s) {bad} "
                f"(blocks {[draws[k] for k in bad]})"
            )
        return values, steps

    def _step_pairs(
        self, record: Any, theta: Any, plan: Any, steps: Any, loss: Any, full: Any, geometry: Any
    ) -> None:
        """Smoothness pairs (theta, theta + the step sample j gives) for j < step_pairs, into
        record['pairs']."""
        world = _dist()[1]
        for j in range(self.step_pairs):
            v, missing = steps.get(j, (torch.zeros_like(theta), ()))
            if _dist()[2]:
                torch.distributed.broadcast(v, src=j % world)
                box = [missing]
                torch.distributed.broadcast_object_list(box, src=j % world)
                missing = box[0]
            grads.set_flat_params(self.params, plan.step(theta, v.to(theta.dtype), missing))
            # the point the parameters now hold: a float16/bfloat16 model rounds the step, and the
            # pair's distance must be the one f was evaluated across
            moved = grads.flat_params(self.params).to(theta.dtype)
            if bool(torch.equal(moved, theta)):
                continue  # lr = 0, or a step below the parameters' resolution: no step, no pair
            loss_y, full_y = self._full(f"smoothness pair {j} (the step with sample {j})")
            record["pairs"].append(
                {"kind": "step", **self._pair(theta, moved, loss, loss_y, full, full_y, geometry)}
            )

    def _check_loss(self, loss: Any) -> None:
        bound = 0.0 if self.loss_lower_bound is None else self.loss_lower_bound
        if loss < bound:
            if self.loss_lower_bound is None:
                raise ValueError(
                    f"the loss f = {loss:.6g} is negative, so the default lower bound f* >= 0 does "
                    "not hold: pass Probe(..., loss_lower_bound=...) (f* or a lower bound on it; "
                    "Theorems 1-2 need delta = f(theta_0) - f*)"
                )
            raise ValueError(
                f"loss_lower_bound = {bound:.6g} is above the measured loss f = {loss:.6g}: it is "
                "not a lower bound on f*"
            )

    @staticmethod
    def _pair(x: Any, y: Any, f_x: Any, f_y: Any, g_x: Any, g_y: Any, p: Any) -> Any:
        s = smoothness.pair_statistics(x.double(), y.double(), f_x, f_y, g_x, g_y, p)
        return {k: float(v) for k, v in s.items()}

    # -- fitting and resuming ----------------------------------------------------------------

    def fit(self, T: int, **kwargs: Any) -> dict:
        """The constants over all measurements so far (`lpcheck.estimate.fit.fit_run`), for a run of
        T steps.

        Pass lr_used (the run's peak lr, a callable t -> lr, or the T per-step lrs): the step cap is
        compared with the largest lr of the whole run, which the checkpoints alone may miss (without
        it the comparison is left out, with the reason). loss_lower_bound defaults to the probe's.
        """
        kwargs.setdefault("loss_lower_bound", self.loss_lower_bound)
        return fit.fit_run(self.records, T, **kwargs)

    def state_dict(self) -> dict:
        """What a resumed run needs: the records, the probe's generator and the previous point."""
        prev = (
            None
            if self._prev is None
            else {"theta": self._prev[0].cpu(), "grad": self._prev[1].cpu(), "loss": self._prev[2]}
        )
        return {
            "records": self.records,
            "generator": self.generator.get_state(),
            "prev": prev,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "mode": self.mode,
            "norm": self._norm_name(),
        }

    def _norm_name(self) -> Any:
        return None if self.norm is None else repr(self.norm)

    def load_state_dict(self, state: dict) -> None:
        for k in ("seed", "batch_size", "mode"):
            if state[k] != getattr(self, k):
                raise ValueError(
                    f"cannot resume: the saved probe has {k} = {state[k]!r}, this one "
                    f"{getattr(self, k)!r}"
                )
        if (
            state.get("norm") != self._norm_name()
        ):  # a state saved before norm= existed measured the method's own
            raise ValueError(
                f"cannot resume: the saved probe has norm = {state.get('norm')!r}, this one "
                f"{self._norm_name()!r} (the records would mix geometries)"
            )
        self.records = list(state["records"])
        self.generator.set_state(state["generator"])
        prev = state["prev"]
        self._prev = (
            None
            if prev is None
            else (prev["theta"].to(self.device), prev["grad"].to(self.device), prev["loss"])
        )


def _measure_of(full: Any, f32: Any, theta: Any, plan: Any, geometry: Any) -> Any:
    """(the statistics' names, phi, the gradient's dual norm) in the paper's geometry (`geometry` a
    float p: phi = ||grad f||_2^2, LPSGDM's momentum statistics when it has a buffer) or a method's
    own (phi = ||grad f||_*^2). Moves the paper plan's m_{t-1} and beta to the statistics' dtype."""
    if (
        plan.paper is not None and plan.paper["m"] is not None
    ):  # m_{t-1} and beta in the statistics' dtype
        plan.paper["m"] = plan.paper["m"].to(theta.dtype)
        if isinstance(plan.paper["beta"], torch.Tensor):
            plan.paper["beta"] = plan.paper["beta"].to(theta.dtype)
    if isinstance(geometry, float):
        names = _STATS + (_STATS_M if plan.paper["m"] is not None else ())
        grad_dual = float(lp.lp_norm(full, lp.dual_exponent(plan.paper["p"]), check_finite=False))
        return names, (f32 * f32).sum(), grad_dual
    grad_dual = float(geometry.dual(full))
    return _STATS, torch.tensor(grad_dual**2, dtype=theta.dtype, device=theta.device), grad_dual


def checked_loss(loss_fn: Callable, out: Any, y: Any, name: str, give: str) -> Any:
    """loss_fn(out, y), checked: an exception, or torch's warning that the loss broadcast outputs
    and targets of different shapes (mse_loss's (b, 1) against (b,): a b x b loss, silently wrong
    numbers), is a ValueError naming the loss (`name`); `give`: the option that takes a loss fit
    for a model returning a tuple or a dict. Once per run: catching warnings is not free."""
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loss = loss_fn(out, y)
    except Exception as e:
        hint = (
            ""
            if isinstance(out, torch.Tensor)
            else f" (the model returns a {type(out).__name__}: give {give}"
            + ("MODULE:FUNCTION" if give.startswith("--") else "a function")
            + " that takes it, e.g. loss(outputs, targets) = cross_entropy(outputs"
            + ('["logits"]' if isinstance(out, dict) else "[0]")
            + ", targets))"
        )
        targets = f"{tuple(y.shape)} ({y.dtype})" if isinstance(y, torch.Tensor) else type(y)
        raise ValueError(
            f"{name} on the model's outputs {shape} and the targets {targets} raised "
            f"{type(e).__name__}: {checks.first_line(e)}{hint}"
        ) from None
    for w in caught:
        if "broadcast" not in str(w.message):  # the loss's other warnings, as it gave them
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        else:
            raise ValueError(
                f"{name} broadcast the model's outputs {shape} against the targets "
                f"{tuple(y.shape)}, which gives a wrong loss: make them the same shape (torch "
                f"warned: {checks.first_line(w.message)})"
            )
    return loss


def too_many_samples(samples: int, n: int, batch_size: int, option: str) -> str:
    """Why K = `samples` draws from the n_b = n // b blocks are refused when K > n_b."""
    blocks = n // batch_size
    return (
        f"{option} (K = {samples}) must be <= the number of distinct mini-batches, n // batch_size "
        f"= {n} // {batch_size} = {blocks}: K > {blocks} draws would repeat blocks and count them "
        f"as independent samples of the noise; give {option} <= {blocks}, a smaller batch size or "
        "more examples"
    )
