"""Any method in a rate study: a layer method or a torch.optim.Optimizer class, each seed run as if
alone.

`lpcheck rates --optimizer` names the paper's six (lpcheck.rates.simulation.METHODS), any method of
the layer (`lpcheck.methods.METHODS`, 'NAME:key=value,...'), or a user's class
'MODULE:CLASS[:key=value,...]': a `lpcheck.methods.Method` subclass or a `torch.optim.Optimizer`
subclass. This module holds the last two kinds and what the study needs of them:

- `LayerMethod`: a layer method; batched (one `update(..., batched=True)` on the (seeds, d) tensor,
  row i as seed i alone) for the built-ins (the layer's contract, tested against a loop over seeds)
  and for a user's Method whose batched update agrees with its per-row update on a probe
  (`rows_agree`); per seed (one update per row) otherwise.
- `TorchMethod`: a torch optimizer class, built with lr = the study's step and the spec's keyword
  arguments. Each seed is an independent copy of the optimizer: a loop over seeds, each with its own
  (d,) parameter, which is correct for any class. Batched (ONE optimizer over the (seeds, d) tensor)
  only where the update is elementwise, so that rows cannot see each other: the classes in
  `ELEMENTWISE` (exact class, not subclasses: a subclass may change `step`), and a class that
  declares `elementwise = True`, which is held to it on a probe (bit for bit, `rows_agree`; a
  declaration the probe contradicts is an error). Any other class runs per seed. A class with
  `set_epoch(s)` (lpcheck.optim's) is told each epoch, as a training loop would.
- `Geometry` (`geometry(method, d)`): the norm its constants are measured in, and the smoothness
  constant there. The method's own norm (`Method.norm`) where it is an lp norm with p >= 2 or a
  layerwise norm (on the study's one parameter vector a scaled lp norm: ||x|| = ||x||_p / scale, so
  L = L(p) scale^2); else l2, with the reason (Adam's and RMSProp's ellipsoid changes with the
  state, and no L is known for it; a torch optimizer class has no norm lpcheck knows, so it is
  measured in l2, as the Probe measures such a class).
- `sample_directions`: the method's directions for K fresh gradients at a checkpoint, its state
  before the step held fixed (eq. 43-44's conditioning for any method), which
  `lpcheck.rates.constants` measures.

Why the descent argument carries over: for f L-smooth in a norm ||.||, any step theta - eta u gives
f(theta') <= f(theta) - eta <grad f, u> + L eta^2 ||u||^2 / 2; given F_t (the state fixed),
Assumption 5's E<grad f, u> >= c1 ||grad f||_*^2 and E||u||^2 <= c2 + c3 ||grad f||_*^2 give eq. 31
for the mean of ||grad f||_*^2 with the same c1, c2, c3 and L. So the 'theorem' step (eq. 32) and
the bound check apply to any method, in its geometry, for the metric ||grad f||_*^2 of that geometry
(`bound_metrics`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from lpcheck import methods as layer

__all__ = [
    "LayerMethod",
    "TorchMethod",
    "Geometry",
    "geometry",
    "ELEMENTWISE",
    "rows_agree",
    "torch_method",
    "layer_method",
    "sample_directions",
    "initial_state",
    "has_memory",
    "LayerSteps",
    "TorchSteps",
]


def _elementwise_classes():
    from lpcheck.baselines import Lion
    from lpcheck.optim import LPSGD, LPSGDM

    o = torch.optim
    return (
        o.SGD,
        o.Adam,
        o.AdamW,
        o.RMSprop,
        o.Adagrad,
        o.Adamax,
        o.NAdam,
        o.RAdam,
        o.Rprop,
        o.ASGD,
        o.Adadelta,
        LPSGD,
        LPSGDM,
        Lion,
    )


ELEMENTWISE_NAMES = {
    ("lion_pytorch.lion_pytorch", "Lion")
}  # elementwise classes of packages lpcheck does not need


def _known_elementwise(cls) -> bool:
    return cls in _elementwise_classes() or (cls.__module__, cls.__qualname__) in ELEMENTWISE_NAMES


ELEMENTWISE = (
    "torch.optim SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, NAdam, RAdam, Rprop, ASGD, Adadelta; "
    "lpcheck.optim LPSGD, LPSGDM; lpcheck.baselines.Lion; lion_pytorch.Lion"
)


@dataclass(frozen=True, eq=False)
class LayerMethod:
    """A lpcheck.methods Method in a rate study: `spec` as given, `batched` or per seed (`how` says
    why)."""

    method: layer.Method
    spec: str
    batched: bool = True
    how: str = "batched: a built-in method of lpcheck.methods (the layer's batched contract)"

    @property
    def name(self) -> str:
        return self.spec

    def label(self) -> str:
        return self.spec


@dataclass(frozen=True, eq=False)
class TorchMethod:
    """A torch.optim.Optimizer class: `cls(params, lr=eta, **kwargs)`; `batched` or per seed (`how`
    says why)."""

    cls: type
    kwargs: dict
    spec: str
    batched: bool
    how: str

    @property
    def name(self) -> str:
        return self.spec

    def label(self) -> str:
        return f"{self.spec} ({'batched' if self.batched else 'per seed'})"

    def build(self, params, lr):
        return self.cls(params, lr=lr, **self.kwargs)


# ---------------------------------------------------------------------------------------------
# resolution checks: a probe on a few rows, before any work


def _probe_rows(rows=3, d=5, steps=3, seed=0):
    """Points and gradients whose rows differ by orders of magnitude: a global norm or a mean over
    rows shows."""
    gen = torch.Generator().manual_seed(seed)
    scale = torch.logspace(-3, 3, rows, dtype=torch.float64)[:, None]
    theta = torch.randn(rows, d, generator=gen, dtype=torch.float64) * scale
    grads = [torch.randn(rows, d, generator=gen, dtype=torch.float64) * scale for _ in range(steps)]
    return theta, grads


def _torch_rows(build, theta, grads, batched):
    """The probe's iterates: one optimizer over all rows (batched) or one per row."""
    if batched:
        P = theta.clone()
        opt = build([P])
        out = []
        for g in grads:
            P.grad = g.clone()
            opt.step()
            out.append(P.detach().clone())
        return out
    Ps = [theta[i].clone() for i in range(theta.shape[0])]
    opts = [build([P]) for P in Ps]
    out = []
    for g in grads:
        for i, (P, opt) in enumerate(zip(Ps, opts)):
            P.grad = g[i].clone()
            opt.step()
        out.append(torch.stack([P.detach().clone() for P in Ps]))
    return out


def _layer_rows(method, theta, grads, batched):
    needs = method.needs_params(method.hp)
    if batched:
        state, th, out = method.init([theta]), theta.clone(), []
        for g in grads:
            d, state = method.update([g], state, params=[th] if needs else None, batched=True)
            th = th - 0.1 * d[0]
            out.append(th)
        return out
    states = [method.init([theta[i]]) for i in range(theta.shape[0])]
    th, out = theta.clone(), []
    for g in grads:
        rows = []
        for i in range(th.shape[0]):
            d, states[i] = method.update([g[i]], states[i], params=[th[i]] if needs else None)
            rows.append(d[0])
        th = th - 0.1 * torch.stack(rows)
        out.append(th)
    return out


def rows_agree(target, exact: bool = True) -> bool:
    """Whether one batched update over rows equals one update per row on a probe (3 rows at scales
    1e-3 ... 1e3, 3 steps): bit for bit (`exact`, torch optimizer classes) or to 1e-10 (a layer
    Method's per-row reductions may sum in another order)."""
    theta, grads = _probe_rows()
    if isinstance(target, layer.Method):
        a, b = _layer_rows(target, theta, grads, True), _layer_rows(target, theta, grads, False)
    else:
        a, b = _torch_rows(target, theta, grads, True), _torch_rows(target, theta, grads, False)
    if exact:
        return all(torch.equal(x, y) for x, y in zip(a, b))
    return all(torch.allclose(x, y, rtol=1e-10, atol=1e-300) for x, y in zip(a, b))


def layer_method(method: layer.Method, spec: str) -> LayerMethod:
    """A layer method for the study: built-ins batched; a user's Method batched only if its rows
    agree."""
    if type(method) in layer.BUILTINS.values():
        return LayerMethod(method, spec)
    try:
        agree = rows_agree(method, exact=False)
    except (
        Exception
    ) as e:  # a user's update that fails on a plain probe step fails the study too: say so now
        raise ValueError(
            f"--optimizer {spec}: {type(method).__name__}.update failed on a probe step "
            f"({type(e).__name__}: {e})"
        ) from None
    if agree:
        return LayerMethod(
            method, spec, True, "batched: its batched update equals its per-row update on a probe"
        )
    return LayerMethod(
        method,
        spec,
        False,
        "per seed: its batched update differs from its per-row update on a probe "
        "(rows are not independent), so each seed is updated alone",
    )


def torch_method(cls, kwargs: dict, spec: str) -> TorchMethod:
    """A torch optimizer class checked on a probe (keyword arguments, a step without closure),
    batched or per seed."""
    if "lr" in kwargs:
        raise ValueError(
            f"--optimizer {spec}: lr is set by the step rule (--step, --lr), not in the optimizer "
            "spec"
        )

    def build(params):
        return cls(params, lr=1e-3, **kwargs)

    try:
        build([torch.zeros(4, dtype=torch.float64)])
    except Exception as e:
        raise ValueError(
            f"--optimizer {spec}: {cls.__name__}(params, lr=..., **{kwargs!r}) failed: "
            f"{type(e).__name__}: {e}"
        ) from None
    known = _known_elementwise(cls)
    declared = getattr(cls, "elementwise", None) is True
    try:
        theta, grads = _probe_rows()
        _torch_rows(build, theta, grads, batched=False)
        agree = rows_agree(build) if (declared and not known) else None
    except TypeError as e:
        raise ValueError(
            f"--optimizer {spec}: {cls.__name__}.step() failed without a closure ({e}); rates "
            "steps optimizers whose step needs no closure"
        ) from None
    except Exception as e:
        raise ValueError(
            f"--optimizer {spec}: {cls.__name__}.step() failed on a probe step "
            f"({type(e).__name__}: {e})"
        ) from None
    if known:
        return TorchMethod(
            cls, dict(kwargs), spec, True, "batched: an elementwise class (" + ELEMENTWISE + ")"
        )
    if declared:
        if not agree:
            raise ValueError(
                f"--optimizer {spec}: {cls.__name__} declares elementwise = True, but one step "
                "over several rows differs from one step per row on a probe: rows see each other"
            )
        return TorchMethod(
            cls,
            dict(kwargs),
            spec,
            True,
            "batched: declares elementwise = True, and a probe agrees bit for bit",
        )
    return TorchMethod(
        cls,
        dict(kwargs),
        spec,
        False,
        "per seed: a class lpcheck does not know to be elementwise "
        "(declare elementwise = True to batch it): one copy per seed",
    )


# ---------------------------------------------------------------------------------------------
# geometry: the norm the constants and the dual metrics are in


@dataclass(frozen=True)
class Geometry:
    """||x|| = ||x||_p / scale on the study's parameter vector (`norm`, a lpcheck.methods Norm);
    `native`: the method's own norm (else l2 in its place, `why`)."""

    norm: object
    p: float
    scale: float
    native: bool
    why: str = ""

    def L(self, problem) -> float:
        """Assumption 1 in this norm: L(p) scale^2 (||v||_p = scale ||v||)."""
        return float(problem.L(self.p)) * self.scale**2

    def describe(self) -> str:
        text = f"{self.norm!r}" + (
            f" (= ||x||_{self.p:g} / {self.scale:g})" if self.scale != 1 else ""
        )
        return text + ("" if self.native else f"; {self.why}")


def _lp_equivalent(norm, d):
    """(p, scale) with norm(x) = ||x||_p / scale on one vector of length d, or None."""
    if isinstance(norm, layer.Lp):
        return (norm.p, 1.0) if norm.p >= 2 else None
    if isinstance(norm, layer.Layerwise):
        p = math.inf if norm.vector == "sign" else 2.0
        return p, norm.radius * (math.sqrt(d) if norm.vector == "rms" else 1.0)
    return None


def geometry(method, d: int) -> Geometry:
    """The geometry of a LayerMethod or TorchMethod on a problem of dimension d (module
    docstring)."""
    l2 = layer.Lp(2.0)
    if isinstance(method, TorchMethod):
        return Geometry(
            l2,
            2.0,
            1.0,
            False,
            "a torch optimizer class: lpcheck knows no norm of its own for it, so it "
            "is measured in l2 (as the Probe measures such a class)",
        )
    m = method.method
    try:
        norm = m.norm(m.init([torch.zeros(d, dtype=torch.float64)]))
    except NotImplementedError:
        return Geometry(l2, 2.0, 1.0, False, f"{m.name} defines no norm(): measured in l2")
    found = _lp_equivalent(norm, d)
    if found is None:
        why = (
            "its norm changes with its state and no smoothness constant is known in it"
            if isinstance(norm, layer.Ellipsoidal)
            else "the problems give L(p) for lp norms with p >= 2 only"
        )
        return Geometry(l2, 2.0, 1.0, False, f"{m.name}'s norm is {norm!r}: {why}; measured in l2")
    return Geometry(norm, found[0], found[1], True)


def bound_metrics(method, d: int) -> set:
    """The metrics equal to the phi = ||grad f||_*^2 its constants are measured with: eq. 31 bounds
    their mean."""
    geo = geometry(method, d)
    out = {"dual_sq"} if geo.native else set()
    if geo.scale == 1:
        out |= {"grad_q_sq"} if geo.native else set()
        out |= {"grad_l2_sq"} if geo.p == 2 else set()
    return out


# ---------------------------------------------------------------------------------------------
# stepping all seeds


class LayerSteps:
    """A layer method stepping every seed: batched (one update on the (seeds, d) tensor) or one
    update per seed. `at(s)` gives the method of epoch s (the paper's p schedule; a LayerMethod's
    method for every s)."""

    def __init__(self, at, theta, batched: bool):
        self.at, self.batched, self.method = at, batched, at(1)
        if batched:
            self.state = self.method.init([theta])
        else:
            self.state = [self.method.init([theta[i]]) for i in range(theta.shape[0])]

    def epoch(self, s: int) -> None:
        self.method = self.at(s)

    def step(self, theta, g, eta) -> None:
        m = self.method
        needs = m.needs_params(m.hp)
        if self.batched:
            direction, self.state = m.update(
                [g], self.state, params=[theta] if needs else None, batched=True
            )
            theta.add_(direction[0], alpha=-eta)
            return
        rows = []
        for i in range(theta.shape[0]):
            d, self.state[i] = m.update([g[i]], self.state[i], params=[theta[i]] if needs else None)
            rows.append(d[0])
        theta.add_(torch.stack(rows), alpha=-eta)

    def row_state(self, i: int) -> dict:
        """Seed i's state before the coming step, as the state of a (d,) parameter."""
        if self.batched:
            return {
                k: [v[0][i].clone() if v[0].dim() else v[0].clone()] for k, v in self.state.items()
            }
        return {k: [v[0].clone()] for k, v in self.state[i].items()}


class TorchSteps:
    """A torch optimizer class stepping every seed: one optimizer over theta itself (batched), or
    one copy per seed on its own (d,) parameter (theta is copied back after each step).
    Non-finite gradients that the optimizer refuses (lpcheck.optim's check_finite) end the seeds
    concerned as diverged (nan), as a diverged run."""

    def __init__(self, method: TorchMethod, theta, eta):
        self.m, self.batched = method, method.batched
        self.params = [theta] if self.batched else [theta[i].clone() for i in range(theta.shape[0])]
        self.opts = [method.build([P], eta) for P in self.params]
        self.alive = [True] * len(self.params)

    def epoch(self, s: int) -> None:
        for opt in self.opts:
            if callable(getattr(opt, "set_epoch", None)):
                opt.set_epoch(s)

    def step(self, theta, g, eta) -> None:
        if self.batched:
            if self.alive[0] and not self._step(0, theta, g):
                theta.fill_(math.nan)
            return
        for i, P in enumerate(self.params):
            if self.alive[i] and not self._step(i, P, g[i].clone()):
                P.fill_(math.nan)
        theta.copy_(torch.stack(self.params))

    def _step(self, i, P, g) -> bool:
        P.grad = g
        try:
            self.opts[i].step()
        except Exception:
            if bool(torch.isfinite(g).all()):
                raise
            self.alive[i] = False
        P.grad = None
        return self.alive[i]

    def row_state(self, i: int) -> dict:
        """Seed i's optimizer state before the coming step: its state for the parameter (a row of
        each tensor shaped like theta when batched) and its param groups' other entries (a class
        may count steps there)."""
        opt, P = self.opts[0 if self.batched else i], self.params[0 if self.batched else i]
        state = opt.state.get(P, {})
        if self.batched:
            state = {
                k: v[i].clone()
                if isinstance(v, torch.Tensor) and v.shape == P.shape
                else copy.deepcopy(v)
                for k, v in state.items()
            }
        else:
            state = _copy_state(state)
        groups = [
            copy.deepcopy({k: v for k, v in g.items() if k != "params"}) for g in opt.param_groups
        ]
        return {"state": state, "groups": groups}


def initial_state(method, theta_row) -> dict:
    """The state before the first step, for one (d,) parameter."""
    if isinstance(method, TorchMethod):
        return {"state": {}, "groups": None}
    return method.method.init([theta_row])


def has_memory(method, state: dict) -> bool:
    """Whether a checkpoint's state holds anything (a stateless method's is empty at every step)."""
    return bool(state["state"]) if isinstance(method, TorchMethod) else bool(state)


def sample_directions(method, theta_row, state_row, g, *, lr, epoch=None):
    """The directions (K, d) for K fresh gradients g (K, d) at theta_row (d,), the state before the
    step fixed.

    A torch optimizer's direction is read from its step: (theta - theta') / lr, with lr the step the
    run used (decoupled weight decay is part of it, as it is part of the step). Batched where the
    method is, else K calls.
    """
    K, d = g.shape
    if isinstance(method, LayerMethod):
        m = method.method
        needs = m.needs_params(m.hp)
        if method.batched:
            st = {
                k: [v[0].expand(K, *v[0].shape).clone() if v[0].dim() else v[0]]
                for k, v in state_row.items()
            }
            out, _ = m.update(
                [g], st, params=[theta_row.expand(K, d)] if needs else None, batched=True
            )
            return out[0]
        return torch.stack(
            [
                m.update([g[k]], state_row, params=[theta_row] if needs else None)[0][0]
                for k in range(K)
            ]
        )
    saved = state_row["state"]
    if method.batched:
        P = theta_row.expand(K, d).clone()
        state = {
            k: v.expand(K, *v.shape).clone()
            if isinstance(v, torch.Tensor) and v.shape == theta_row.shape
            else copy.deepcopy(v)
            for k, v in saved.items()
        }
        return (
            theta_row
            - _replay(method.build([P], lr), P, state, state_row["groups"], g.clone(), epoch)
        ) / lr
    P = theta_row.clone()
    opt = method.build(
        [P], lr
    )  # one optimizer for the K replays: its state and groups are replaced before each
    rows = []
    for k in range(K):
        P.copy_(theta_row)
        rows.append(
            (
                theta_row
                - _replay(opt, P, _copy_state(saved), state_row["groups"], g[k].clone(), epoch)
            )
            / lr
        )
    return torch.stack(rows)


def _copy_state(state: dict) -> dict:
    return {
        k: v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v) for k, v in state.items()
    }


def _replay(opt, P, state, groups, g, epoch):
    """One step of `opt` on P from `state` (its state for P; empty: a fresh optimizer's) and the
    groups' saved entries other than lr (the replay's lr is the run's step), with gradient g."""
    opt.state.pop(P, None)
    if state:
        opt.state[P] = state
    for group, saved in zip(opt.param_groups, groups or []):
        group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "lr"})
    if epoch is not None and callable(getattr(opt, "set_epoch", None)):
        opt.set_epoch(epoch)
    P.grad = g
    opt.step()
    return P.detach()
