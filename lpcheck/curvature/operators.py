"""Symmetric operators v -> H v on flat vectors: the Hessian of a model's loss, or an explicit
matrix.

The Hessian operator (`HessianOperator`) differentiates

    f(theta) = sum_b w_b L_b(theta),    w_b = n_b / n  by default
               (n_b examples in batch b, n = sum_b n_b),

where L_b = loss_fn(model, batch_b). With batch losses that are means over their examples (torch's
default reduction) f is the mean loss over all n examples: the full-data loss, the same function
whatever the partition into batches, so batches of 100 and 28 examples give the Hessian of one batch
of 128. For a sum-reduced loss pass weights=[1 / n] * B (f the mean) or [1] * B (the sum); for a
per-token mean, weights proportional to each batch's tokens.

Only eval mode (or a model without BatchNorm) makes f independent of the partition: in train mode
BatchNorm normalises with each batch's own statistics, so f depends on how the examples are grouped.

H v is the double backward (Pearlmutter's R-operator by reverse over reverse): with g_b = grad(w_b
L_b) built with create_graph=True, H v = sum_b grad(<g_b, v>). Two ways to run it (`retain`):
  - retained graphs: each batch's first backward is done once and its graph kept, so a product is
    one double backward over the kept graphs (what PyHessian does for one batch); memory: the
    activations and the backward's saved tensors of every batch at once;
  - recompute: forward, backward and double backward per batch per product, one batch's graph alive
    at a time (memory-light, ~1.3x the time per product on a CPU ResNet).
`retain="auto"` (the default) measures the first batch's graph (the bytes its saved tensors hold),
scales it by the examples, and retains when that fits `memory_budget` (default: half of the memory
available when the graphs are first built: free device memory on CUDA, MemAvailable on the host).
Retained graphs are rebuilt when a parameter (or buffer) changed in place since they were built.
Random layers (dropout) see a fixed seed per batch, so every product is with the same function and
the operator is linear and symmetric (also when recomputed)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import torch

from lpcheck import checks

__all__ = [
    "HessianOperator",
    "DenseOperator",
    "preserved_buffers",
    "preserved_batchnorm",
    "examples",
    "hvp",
]


@contextlib.contextmanager
def preserved_buffers(model: torch.nn.Module) -> Iterator[None]:
    """Run the block with every buffer of the model replaced by a copy (a buffer two modules share,
    by one copy).

    A forward in train mode writes to buffers: BatchNorm's running statistics and batch counter,
    InstanceNorm's with track_running_stats, a user's running averages or counters. The block's
    forward passes update the copies; the original tensors are put back afterwards, never written
    to. So measuring never changes training, and a graph kept from the block (which saves the
    buffers it used) stays valid: writing the old values back in place would bump their version
    and make any later double backward through that graph fail.
    """
    swapped: list = []
    copies: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        for m in model.modules():
            for name, original in list(m._buffers.items()):
                if isinstance(original, torch.Tensor):
                    swapped.append((m, name, original))
                    copy = copies.setdefault(id(original), original.clone())
                    setattr(m, name, copy)
    try:
        yield
    finally:
        for m, name, original in swapped:
            setattr(m, name, original)


def _math_attention() -> Any:
    """scaled_dot_product_attention (nn.MultiheadAttention, TransformerEncoderLayer) through its
    math kernel: the fused kernels (flash, memory-efficient, cuDNN) have no second derivative, and
    a Hessian product differentiates the forward twice."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


# the name it had while only BatchNorm's statistics were kept
preserved_batchnorm = preserved_buffers


class Operator(Protocol):
    """What the Krylov and trace estimators use of an operator: v -> A v for a symmetric A of size
    dim x dim, on `device` in `dtype`, counting its products (`calls`). HessianOperator and
    DenseOperator are two."""

    dim: int
    device: torch.device
    dtype: torch.dtype
    calls: int

    def __call__(self, v: torch.Tensor) -> torch.Tensor: ...


class DenseOperator:
    """An explicit symmetric matrix as an operator (for tests and known spectra)."""

    def __init__(self, matrix: Any) -> None:
        if type(matrix).__module__ == "numpy":
            matrix = torch.as_tensor(matrix)
        if (
            not isinstance(matrix, torch.Tensor)
            or matrix.ndim != 2
            or matrix.shape[0] != matrix.shape[1]
            or matrix.shape[0] == 0
        ):
            got = (
                f"shape {tuple(matrix.shape)}"
                if isinstance(matrix, torch.Tensor)
                else type(matrix).__name__
            )
            raise ValueError(f"matrix must be a non-empty square 2-D tensor, got {got}")
        if not matrix.is_floating_point():
            raise ValueError(f"matrix must be real floating-point, got {matrix.dtype}")
        if matrix.layout != torch.strided or matrix.device.type == "meta":
            where = "the meta device" if matrix.device.type == "meta" else f"layout {matrix.layout}"
            raise ValueError(f"matrix must be a dense tensor with values, got one on {where}")
        if not bool(torch.isfinite(matrix).all()):
            raise ValueError("matrix must be finite, got inf or nan entries")
        scale = float(matrix.abs().max())
        if float((matrix - matrix.T).abs().max()) > 1e3 * torch.finfo(matrix.dtype).eps * scale:
            raise ValueError(
                "matrix must be symmetric (Lanczos and the spectral measure assume a symmetric "
                "operator)"
            )
        self.matrix = matrix
        self.dim, self.device, self.dtype = matrix.shape[0], matrix.device, matrix.dtype
        self.calls = 0

    def __call__(self, v: Any) -> Any:
        check_vector("v", v, self)
        self.calls += 1
        return self.matrix @ v


def examples(batch: Any) -> Any:
    """The number of examples in a batch: the leading size of its first tensor (a tensor, or the
    first tensor found in a tuple, list or mapping, depth first); None when it holds no tensor
    with a dimension."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else None
    items = (
        batch.values()
        if isinstance(batch, Mapping)
        else batch
        if isinstance(batch, (tuple, list))
        else ()
    )
    for item in items:
        n = examples(item)
        if n is not None:
            return n
    return None


def _memory_available(device: Any) -> int | None:
    """Bytes free now: on the CUDA device, or the host's MemAvailable (None where unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


class _SavedBytes:
    """Counts the bytes of the tensors autograd saves for backward inside the block (each storage
    once, the parameters' own storages excluded: they exist anyway). A kept graph holds these
    tensors."""

    def __init__(self, exclude: Any) -> None:
        self.exclude = {self._key(t) for t in exclude}
        self.seen: set = set()
        self.bytes = 0

    @staticmethod
    def _key(t: Any) -> Any:
        try:
            return t.untyped_storage().data_ptr(), t.device
        except (RuntimeError, NotImplementedError):  # tensors without a plain storage
            return id(t), t.device

    def _pack(self, t: Any) -> Any:
        key = self._key(t)
        if key not in self.exclude and key not in self.seen:
            self.seen.add(key)
            try:
                self.bytes += t.untyped_storage().nbytes()
            except (RuntimeError, NotImplementedError):
                self.bytes += t.numel() * t.element_size()
        return t

    def hooks(self) -> Any:
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)


class HessianOperator:
    """v -> H v, H the Hessian of f = sum_b w_b loss_fn(model, batch_b) w.r.t. the trainable
    parameters.

    (The module docstring defines f, the default weights w_b = n_b / n, and the two ways of running
    the product.) `loss_fn(model, batch) -> scalar loss`; `batches` is a list of batches, each
    passed to loss_fn as is; the operator works on flat vectors in `model.parameters()` order
    (trainable ones).

    mode: "train" (the loss the optimizer sees: BatchNorm with batch statistics; its running
    statistics, and every buffer a forward writes, untouched: `preserved_buffers`) or "eval".
    weights: None (n_b / n, counted by `examples(batch)`) or one number >= 0 per batch. retain:
    "auto", True (always keep the graphs) or False (recompute every product). memory_budget: bytes
    the kept graphs may take (retain="auto"); None: half of what is free when they are first built.
    seed: the random seed of batch b's forward is seed + b (dropout masks stay fixed).

    After the first product: `retained` (bool), `graph_bytes` (the estimated bytes of all the kept
    graphs) and `retain_reason` say what was chosen and why. `release()` frees kept graphs.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
        batches: Sequence[Any],
        mode: str = "train",
        weights: Sequence[float] | None = None,
        retain: bool | str = "auto",
        memory_budget: float | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise ValueError(
                f"loss_fn must be a callable loss_fn(model, batch) -> scalar loss, got "
                f"{type(loss_fn).__name__}"
            )
        if not isinstance(mode, str) or mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        if isinstance(batches, (torch.Tensor, str, bytes)) or not hasattr(batches, "__iter__"):
            raise ValueError(
                f"batches must be a list of mini-batches, got {type(batches).__name__}"
            )
        batches = list(batches)
        if not batches:
            raise ValueError("batches is empty: the Hessian needs at least one mini-batch")
        if not (retain == "auto" or isinstance(retain, bool)):
            raise ValueError(f"retain must be 'auto', True or False, got {retain!r}")
        if memory_budget is not None:
            memory_budget = checks.real("memory_budget", memory_budget, low=0.0)
        self.seed = checks.integer("seed", seed, low=0, high=2**63 - 1)
        self.sizes = [examples(b) for b in batches]
        self.weights = self._weights(weights, batches)
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("model has no trainable parameters (none requires a gradient)")
        for i, p in enumerate(self.params):
            if p.device.type == "meta" or p.is_complex() or not p.is_floating_point():
                what = "on the meta device (no values)" if p.device.type == "meta" else p.dtype
                raise ValueError(
                    f"model's trainable parameter {i} must be a real floating-point tensor with "
                    f"values, got one {what}"
                )
        kinds = {(p.dtype, p.device) for p in self.params}
        if len(kinds) > 1:
            raise ValueError(
                f"model's trainable parameters must share one dtype and device, got "
                f"{sorted(f'{d} on {v}' for d, v in kinds)}"
            )
        self.model, self.loss_fn, self.batches, self.mode = model, loss_fn, batches, mode
        self.retain, self.memory_budget = retain, memory_budget
        self.dim = sum(p.numel() for p in self.params)
        self.device, self.dtype = self.params[0].device, self.params[0].dtype
        self.calls = 0
        # set by the first product: whether the graphs are kept, what they take and why
        self.retained: bool | None = None
        self.graph_bytes: int | None = None
        self.retain_reason: str | None = None
        self._graph: list | None = None
        self._state: Any = None

    def _weights(self, weights: Any, batches: Any) -> Any:
        if weights is None:
            missing = [i for i, n in enumerate(self.sizes) if not n]
            if missing:
                raise ValueError(
                    f"batches: cannot count the examples of batch {missing[0]} (no tensor with a "
                    f"non-empty first dimension in a {type(batches[missing[0]]).__name__}); pass "
                    "weights=[w_b, ...], one per batch (w_b = n_b / n for mean-reduced batch "
                    "losses)"
                )
            n = sum(self.sizes)
            return [s / n for s in self.sizes]
        if (
            isinstance(weights, (str, bytes))
            or not hasattr(weights, "__len__")
            or (isinstance(weights, torch.Tensor) and weights.ndim != 1)
        ):
            raise ValueError(
                f"weights must be None or a sequence of {len(batches)} numbers >= 0, got "
                f"{type(weights).__name__}"
            )
        if len(weights) != len(batches):
            raise ValueError(
                f"weights must hold one number per batch ({len(batches)}), got {len(weights)}"
            )
        weights = [checks.real(f"weights[{i}]", w, low=0.0) for i, w in enumerate(weights)]
        if not any(weights):
            raise ValueError("weights must not all be 0 (f would be the zero function)")
        return weights

    # -- products ----------------------------------------------------------------------------------

    def split(self, v: Any) -> Any:
        """A flat vector as views shaped like the parameters."""
        return [
            t.view_as(p)
            for t, p in zip(torch.split(v, [p.numel() for p in self.params]), self.params)
        ]

    def _flat(self, parts: Any) -> Any:
        return torch.cat(
            [
                torch.zeros_like(p).reshape(-1) if h is None else h.reshape(-1)
                for h, p in zip(parts, self.params)
            ]
        )

    @contextlib.contextmanager
    def _seeded(self, b: Any) -> Any:
        cuda = self.device.type == "cuda"
        with torch.random.fork_rng(
            devices=[self.device] if cuda else [], device_type=self.device.type
        ):
            torch.default_generator.manual_seed(self.seed + b)
            if cuda:
                with torch.cuda.device(self.device):
                    torch.cuda.manual_seed(self.seed + b)
            yield

    def _grads(self, b: Any) -> Any:
        """grad(w_b L_b) with its graph (create_graph=True); None for a parameter L_b does not
        use."""
        with self._seeded(b):
            loss = self.loss_fn(self.model, self.batches[b])
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.is_floating_point():
            got = (
                f"shape {tuple(loss.shape)}, {loss.dtype}"
                if isinstance(loss, torch.Tensor)
                else type(loss).__name__
            )
            raise ValueError(
                f"loss_fn(model, batch) must return a real scalar tensor, got {got} for batch {b}"
            )
        if not loss.requires_grad:
            raise ValueError(
                f"loss_fn(model, batch) returned a loss that does not depend on the trainable "
                f"parameters through autograd (batch {b}); do not compute it under torch.no_grad"
            )
        return torch.autograd.grad(
            loss.reshape(()) * self.weights[b], self.params, create_graph=True, allow_unused=True
        )

    def _double_backward(self, grads: Any, vs: Any, keep: Any) -> Any:
        pairs = [(g, v) for g, v in zip(grads, vs) if g is not None and g.requires_grad]
        if not pairs:  # f is linear in the parameters (or constant): H = 0
            return torch.zeros(self.dim, device=self.device, dtype=self.dtype)
        hv = torch.autograd.grad(
            [g for g, _ in pairs],
            self.params,
            grad_outputs=[v for _, v in pairs],
            retain_graph=keep,
            allow_unused=True,
        )
        return self._flat(hv)

    @contextlib.contextmanager
    def _context(self) -> Any:
        was_training = self.model.training
        self.model.train(self.mode == "train")
        try:
            with preserved_buffers(self.model), torch.enable_grad(), _math_attention():
                yield
        finally:
            self.model.train(was_training)

    def _versions(self) -> Any:
        return tuple(t._version for t in self.params) + tuple(
            t._version for t in self.model.buffers()
        )

    def _kept_graph(self, state: Any) -> Any:
        """The summed gradient graph sum_b grad(w_b L_b) at the parameters and buffers whose
        versions are `state` (read outside preserved_buffers, which swaps the buffers), built
        if needed; None when products are recomputed."""
        if self.retain is False or self.retained is False:
            self.retained = False
            self.retain_reason = (
                self.retain_reason or "retain=False: every product recomputes its graphs"
            )
            return None
        if self._graph is not None and self._state == state:
            return self._graph
        self._graph = (
            None  # the parameters changed: free the stale graph before building the new one
        )
        budget = self.memory_budget
        if budget is None:
            free = _memory_available(self.device)
            budget = None if free is None else free / 2
        counter = _SavedBytes(self.params)
        with counter.hooks():
            total = list(self._grads(0))
        grad_bytes = self.dim * self.params[0].element_size()
        first = counter.bytes + grad_bytes
        scale = sum(self.sizes) / self.sizes[0] if all(self.sizes) else len(self.batches)
        self.graph_bytes = int(first * scale)
        if (
            self.retain == "auto"
            and self.retained is None
            and (budget is None or self.graph_bytes > budget)
        ):
            self.retained = False
            self.retain_reason = (
                "memory unknown on this machine"
                if budget is None
                else f"the graphs (~{self.graph_bytes / 2**20:.0f} MiB) exceed the budget "
                f"({budget / 2**20:.0f} MiB): every product recomputes its graphs"
            )
            return None
        for b in range(1, len(self.batches)):
            for i, g in enumerate(self._grads(b)):
                if g is not None:
                    total[i] = g if total[i] is None else total[i] + g
        self.retained = True
        if self.retain_reason is None:
            if self.retain is True:
                reason = "retain=True"
            else:
                assert budget is not None  # retain="auto" without a budget returned above
                reason = (
                    f"the graphs (~{self.graph_bytes / 2**20:.0f} MiB) fit the budget "
                    f"({budget / 2**20:.0f} MiB)"
                )
            self.retain_reason = reason + ": one double backward per product"
        self._graph, self._state = total, state
        return self._graph

    def release(self) -> None:
        """Free the kept graphs (the next product rebuilds them, if retained)."""
        self._graph, self._state = None, None

    def __call__(self, v: Any) -> Any:
        check_vector("v", v, self)
        vs = self.split(v)
        state = self._versions()
        with self._context():
            graph = self._kept_graph(state)
            if graph is not None:
                out = self._double_backward(graph, vs, keep=True)
            else:
                out = torch.zeros(self.dim, device=self.device, dtype=self.dtype)
                for b in range(len(self.batches)):
                    out += self._double_backward(self._grads(b), vs, keep=False)
        self.calls += 1
        return out


def hvp(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    batches: Sequence[Any],
    v: torch.Tensor,
    **kwargs: Any,
) -> torch.Tensor:
    """One product H v (a flat vector in `model.parameters()` order); kwargs as for HessianOperator,
    whose retain defaults to False here (a graph kept for one product would be wasted)."""
    return HessianOperator(model, loss_fn, batches, **({"retain": False} | kwargs))(v)


def check_op(op: object) -> None:
    if not callable(op) or not all(hasattr(op, a) for a in ("dim", "device", "dtype")):
        raise ValueError(
            "op must be an operator v -> H v with dim, device and dtype (HessianOperator, "
            f"DenseOperator), got {type(op).__name__}"
        )


def check_vector(name: str, v: object, op: Operator) -> None:
    if not isinstance(v, torch.Tensor) or v.shape != (op.dim,):
        raise ValueError(
            f"{name} must be a flat vector of length {op.dim}, got "
            + (f"shape {tuple(v.shape)}" if isinstance(v, torch.Tensor) else type(v).__name__)
        )
    if v.dtype != op.dtype or v.device != op.device:
        raise ValueError(
            f"{name} must be {op.dtype} on {op.device} (the operator's), got {v.dtype} on "
            f"{v.device}"
        )


def check_generator(generator: object) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be None or a torch.Generator, got {type(generator).__name__}"
        )


def rademacher(shape: Any, op: Operator, generator: torch.Generator | None = None) -> torch.Tensor:
    """Entries +-1 with probability 1/2 each, in the operator's dtype and on its device."""
    return torch.randint(0, 2, shape, device=op.device, generator=generator).to(op.dtype) * 2 - 1
