"""The norms the methods' analyses use, over a list of tensors: norm, dual norm, LMO and sharp
operator.

Every norm here is a norm on the whole parameter vector theta = (theta_1, ..., theta_n) (one tensor
per parameter), and comes with the three maps the analyses use:

    norm(x)   ||x||
    dual(g)   ||g||_* = max_{||x|| <= 1} <g, x>
    lmo(g)    argmin_{||x|| <= 1} <g, x>
              (so <g, lmo(g)> = -||g||_*, ||lmo(g)|| = 1 for g != 0)
    sharp(g)  g^# = argmax_x <g, x> - ||x||^2/2 = ||g||_* (-lmo(g))
              (the steepest-descent direction: theta - lr g^# minimises <g, x> + ||x||^2 / (2 lr)
              over the step x; eq. 10 for lp)

How per-tensor norms combine into one norm (stated once, tested by <g, x> <= dual(g) norm(x) with
equality at x = -lmo(g)):
- `Lp(p)`: the lp norm of the concatenation, ||x||_p = (sum_i ||x_i||_p^p)^(1/p) (max for p = inf);
  its dual is the lq norm of the concatenation (1/p + 1/q = 1). The paper's Assumption 1 geometry.
- `Ellipsoidal(a)`: ||x||_A = sqrt(sum_j a_j x_j^2) over all coordinates, a > 0 (Adam's and
  RMSProp's preconditioner, Kohler, Adolphs & Lucchi, "Adaptive norms for deep learning with
  regularized Newton methods"); dual sqrt(sum_j g_j^2 / a_j).
- `Layerwise(...)` (Scion's geometry, Pethick et al. 2025): each tensor gets its own norm n_l (the
  spectral norm of a >= 2-D tensor viewed as a matrix (shape[0], rest); for vectors: linf ('sign'),
  l2 or rms = l2 / sqrt(size)), and ||x|| = max_l n_l(x_l) / radius. Its unit ball is the product of
  the balls n_l <= radius, so the LMO is taken layer by layer and the dual norm is radius * sum_l
  n_l^*(g_l) (the nuclear norm for the spectral norm; l1, l2, sqrt(size) l2 for vectors).

batched=True: every tensor has a leading seed axis, each row is its own vector, and every result
is per row: a (seeds,) tensor for norm and dual. The maps read nothing back to the host.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from lpcheck import checks
from lpcheck.methods.base import choice, per_row, row_amax, row_sum

__all__ = ["Norm", "Lp", "Ellipsoidal", "Layerwise", "newton_schulz", "parse", "NORMS"]

NORMS = {
    "l2": "Euclidean norm of all parameters together",
    "linf": "max |theta_j| over all coordinates (sign descent's, Lion's geometry)",
    "l1": "sum |theta_j| over all coordinates",
    "lp:P": "lp norm of the concatenation, P in [1, inf] (the paper's Assumption 1 geometry)",
    "spectral": (
        "max over tensors of the spectral norm (a >= 2-D tensor as a (shape[0], rest) matrix; a "
        "vector's l2)"
    ),
}


class Norm:
    """A norm over lists of tensors; subclasses implement norm, dual and lmo (sharp follows)."""

    name = "norm"

    def norm(self, xs: Any, *, batched: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def dual(self, gs: Any, *, batched: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def lmo(self, gs: Any, *, batched: bool = False) -> list:
        raise NotImplementedError

    def sharp(self, gs: Any, *, batched: bool = False) -> list:
        """g^# = ||g||_* (-lmo(g)): the steepest-descent direction of this norm."""
        gs = list(gs)
        d = self.dual(gs, batched=batched)
        return [-u * per_row(d, u, batched) for u in self.lmo(gs, batched=batched)]

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other: Any) -> bool:
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


def _safe(x: torch.Tensor) -> torch.Tensor:
    """x where x > 0, else 1: a divisor for ratios that are 0 wherever x is 0."""
    return torch.where(x > 0, x, torch.ones_like(x))


class Lp(Norm):
    """||x||_p of the concatenation, p in [1, inf]; computed as m ||x/m||_p with m = max|x| (no
    overflow)."""

    def __init__(self, p: Any) -> None:
        self.p = checks.real("p", p, low=1.0, finite=False)
        self.q = math.inf if self.p == 1 else 1.0 if self.p == math.inf else self.p / (self.p - 1)
        self.name = {1.0: "l1", 2.0: "l2", math.inf: "linf"}.get(self.p, f"lp:{self.p:g}")

    @staticmethod
    def _of(xs: Any, p: Any, batched: bool) -> Any:
        a = [x.abs() for x in xs]
        m = row_amax(a, batched)
        if p == math.inf:
            return m
        if p == 1:
            return row_sum(a, batched)
        r = [t / per_row(_safe(m), t, batched) for t in a]
        return m * row_sum([t**p for t in r], batched) ** (1.0 / p)

    def norm(self, xs: Any, *, batched: bool = False) -> torch.Tensor:
        return self._of(list(xs), self.p, batched)

    def dual(self, gs: Any, *, batched: bool = False) -> torch.Tensor:
        return self._of(list(gs), self.q, batched)

    def lmo(self, gs: Any, *, batched: bool = False) -> list:
        gs = list(gs)
        if self.p == math.inf:
            return [-g.sign() for g in gs]
        a = [g.abs() for g in gs]
        m = row_amax(a, batched)
        if self.p == 1:  # the l1 ball's vertices at the largest |g_j|, ties shared evenly
            top = [(t == per_row(m, t, batched)).to(t.dtype) for t in a]
            k = row_sum(top, batched)
            return [-g.sign() * w / per_row(k, g, batched) for g, w in zip(gs, top)]
        r = [t / per_row(_safe(m), t, batched) for t in a]
        if self.q == 2:
            n = row_sum([t * t for t in r], batched).sqrt()
            return [-g.sign() * t / per_row(_safe(n), t, batched) for g, t in zip(gs, r)]
        n = row_sum([t**self.q for t in r], batched) ** (
            1.0 / self.q
        )  # ||g||_q / m, in [1, d^(1/q)]
        scale = _safe(n) ** (self.q - 1)
        return [-g.sign() * t ** (self.q - 1) / per_row(scale, t, batched) for g, t in zip(gs, r)]


class Ellipsoidal(Norm):
    """||x||_A = sqrt(sum a_j x_j^2) for a list `a` of positive tensors shaped like the
    parameters."""

    name = "ellipsoidal"

    def __init__(self, a: Any) -> None:
        self.a = list(a)

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, Ellipsoidal)
            and len(self.a) == len(other.a)
            and all(torch.equal(x, y) for x, y in zip(self.a, other.a))
        )

    def __hash__(self) -> int:
        return id(self)

    def norm(self, xs: Any, *, batched: bool = False) -> torch.Tensor:
        return row_sum([ai * x * x for ai, x in zip(self.a, xs)], batched).sqrt()

    def dual(self, gs: Any, *, batched: bool = False) -> torch.Tensor:
        return row_sum([g * g / ai for ai, g in zip(self.a, gs)], batched).sqrt()

    def sharp(self, gs: Any, *, batched: bool = False) -> list:
        return [g / ai for ai, g in zip(self.a, gs)]

    def lmo(self, gs: Any, *, batched: bool = False) -> list:
        gs = list(gs)
        d = _safe(self.dual(gs, batched=batched))
        return [-g / ai / per_row(d, g, batched) for ai, g in zip(self.a, gs)]


def newton_schulz(G: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """The quintic Newton-Schulz iteration of Muon and Scion: approximately U V^T for G = U S V^T.

    X_0 = G / (||G||_F + eps) (on the wide side: G^T when G is tall), then `steps` times X <- a
    X + (b A + c A^2) X with A = X X^T and (a, b, c) = (3.4445, -4.7750, 2.0315). Its singular
    values land near 1 (roughly in [0.7, 1.2]), not exactly at 1: it is an approximate LMO of the
    spectral ball. Leading axes are batch axes. Runs in G's dtype (the references use bfloat16).
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    tall = G.shape[-2] > G.shape[-1]
    X = G.mT if tall else G
    X = X / (torch.linalg.matrix_norm(X, keepdim=True) + eps)
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    return X.mT if tall else X


class Layerwise(Norm):
    """max_l n_l(x_l) / radius: the spectral norm for >= 2-D tensors, `vector` ('sign' = linf, 'l2',
    'rms') for the others. `solver` ('svd' or 'newton_schulz', `steps` iterations) computes the
    spectral LMO; norm and dual are exact (singular values) whichever solver the LMO uses."""

    VECTORS = ("sign", "l2", "rms")
    SOLVERS = ("svd", "newton_schulz")
    # each step multiplies a small singular value by about a = 3.4445, so one 1e-30 of the largest
    # reaches the band around 1 within 60 steps, and no step after moves it closer; each step costs
    # three matrix products per parameter and update, so a count past this only spends time
    # (ns_steps = 10**400 looped for ever)
    NS_STEPS_MAX = 1000

    def __init__(
        self, vector: Any = "sign", radius: Any = 1.0, solver: Any = "svd", ns_steps: Any = 5
    ) -> None:
        self.vector = choice("vector", vector, self.VECTORS)
        self.radius = checks.real("radius", radius, low=0.0, low_open=True)
        self.solver = choice("solver", solver, self.SOLVERS)
        self.steps = checks.integer("ns_steps", ns_steps, low=1, high=self.NS_STEPS_MAX)
        extra = f", ns_steps={self.steps}" if self.solver == "newton_schulz" else ""
        self.name = (
            f"layerwise(spectral, {self.vector}, radius={self.radius:g}, {self.solver}{extra})"
        )

    @staticmethod
    def _core(t: Any, batched: bool) -> Any:
        return t.shape[1:] if batched else t.shape

    def _matrix(self, t: Any, batched: bool) -> Any:
        """t as a matrix (shape[0], rest), with the seed axis in front when batched; None for a
        vector."""
        core = self._core(t, batched)
        if len(core) < 2:
            return None
        return t.reshape(((t.shape[0],) if batched else ()) + (core[0], -1))

    def _vector(self, t: Any, batched: bool) -> Any:
        return t.reshape(t.shape[0], -1) if batched else t.reshape(-1)

    def _block_norm(self, t: Any, batched: bool, dual: bool) -> Any:
        M = self._matrix(t, batched)
        if M is not None:
            return torch.linalg.matrix_norm(M, ord="nuc" if dual else 2)
        v = self._vector(t, batched)
        n = v.shape[-1]
        if self.vector == "sign":
            return (
                v.abs().sum(-1) if dual else (v.abs().amax(-1) if n else v.new_zeros(v.shape[:-1]))
            )
        l2 = torch.linalg.vector_norm(v, dim=-1)
        if self.vector == "l2":
            return l2
        return l2 * math.sqrt(n) if dual else l2 / math.sqrt(max(n, 1))

    def norm(self, xs: Any, *, batched: bool = False) -> torch.Tensor:
        return torch.stack([self._block_norm(x, batched, False) for x in xs]).amax(0) / self.radius

    def dual(self, gs: Any, *, batched: bool = False) -> torch.Tensor:
        return torch.stack([self._block_norm(g, batched, True) for g in gs]).sum(0) * self.radius

    def _block_lmo(self, g: Any, batched: bool) -> Any:
        M = self._matrix(g, batched)
        if M is not None:
            if self.solver == "svd":
                U, S, Vh = torch.linalg.svd(M, full_matrices=False)
                # directions of numerically zero singular values (matrix_rank's tolerance) get 0:
                # any weight in [0, 1] there is a minimiser, and their singular vectors are
                # arbitrary, so 0 keeps the LMO unique
                tol = S[..., :1] * max(M.shape[-2:]) * torch.finfo(S.dtype).eps
                X = (U * (S > tol).to(U.dtype).unsqueeze(-2)) @ Vh
            else:
                X = newton_schulz(M, self.steps)
            return -X.reshape(g.shape)
        if self.vector == "sign":
            return -g.sign()
        v = self._vector(g, batched)
        l2 = torch.linalg.vector_norm(v, dim=-1)
        scale = math.sqrt(v.shape[-1]) if self.vector == "rms" else 1.0
        return -g * scale / per_row(_safe(l2), g, batched)

    def lmo(self, gs: Any, *, batched: bool = False) -> list:
        return [self.radius * self._block_lmo(g, batched) for g in gs]


def parse(spec: Any) -> Norm:
    """A norm from its name: 'l2', 'linf', 'l1', 'lp:P' (P in [1, inf]) or 'spectral' (see
    NORMS)."""
    if isinstance(spec, Norm):
        return spec
    if not isinstance(spec, str):
        raise ValueError(
            f"norm must be a Norm or one of {', '.join(NORMS)}, got {type(spec).__name__}"
        )
    text = spec.strip().lower()
    fixed = {"l2": 2.0, "linf": math.inf, "l1": 1.0}
    if text in fixed:
        return Lp(fixed[text])
    if text == "spectral":
        return Layerwise(vector="l2")
    if text.startswith("lp:"):
        try:
            p = float(text[3:])
        except ValueError:
            raise ValueError(f"norm 'lp:P' needs a number P in [1, inf], got {spec!r}") from None
        try:
            return Lp(p)
        except ValueError as e:
            raise ValueError(f"norm {spec!r}: {e}") from None
    raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {spec!r}")
