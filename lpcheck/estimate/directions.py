"""What the Probe measures of an optimizer: its direction for a fresh gradient with its state before
the step fixed, the step it would take, and the geometry (norm) its analysis uses.

    plan = directions.plan(optimizer, params)          # any torch.optim.Optimizer
    # any lpcheck.methods.Method:
    plan = directions.plan(method, params, state=s, lr=0.01, weight_decay=0.0)
    # flat (d,) tensors in `params` order: the direction for gradient g
    d = plan.direction(g, theta)
    # theta (1 - lr lambda) - lr d, each param group with its own lr and lambda
    moved = plan.step(theta, d)

The direction. At step t the optimizer holds a state S_{t-1} (momentum, second moments, step
counts): it is fixed given F_t, and the only randomness left is the fresh gradient g_t. So d(g) is
the method's direction for gradient g at state S_{t-1} (`Method.update(g, S_{t-1})`, pure): eq.
43-44's conditioning (LPSGDM's m_{t-1} fixed) for any method. How it is computed:
- a built-in the method layer describes step for step runs as that layer method, read from the
  optimizer's param groups and state (fast: a few multi-tensor ops per sample):
  lpcheck.optim.LPSGD/LPSGDM (lpsgd, lpsgdm), any `lpcheck.methods.as_optimizer` optimizer
  (lpcheck.baselines.Lion among them: its own method), torch.optim.SGD (sgd, or heavyball with
  momentum), Adam and AdamW (adam), RMSprop (rmsprop) and lion_pytorch.Lion (lion). Only the exact
  classes: a subclass may change `step`. Groups whose hyperparameters the layer cannot take
  (maximize, lion_pytorch's decoupled_weight_decay=True or Triton kernel, a value out of the layer's
  range) fall back to the black box, with the reason in `fallback`;
- any other optimizer (a class lpcheck has never seen) runs through `lpcheck.methods.BlackBox`: one
  step of a copy of the optimizer per sample (its state loaded from `state_dict()`), read back as d
  = -(theta' - (1 - lr lambda) theta) / lr in float64. Exact for any optimizer whose step needs no
  closure, and slower: a copy of the parameters and state and one optimizer step per sample;
- a `Method` given directly uses `state` (its `init` format over `params`; default its `init`), `lr`
  and the decoupled `weight_decay` given with it.

Weight decay. Decoupled decay (LPSGDM's eq. 25, AdamW, Lion, the method layer) is the step's factor
(1 - lr lambda), outside d. Coupled decay (torch's SGD, Adam and RMSprop `weight_decay`: g + lambda
theta before the method) is part of d, as it is part of the optimizer's update (the black box's rule
too).

The geometry. `plan.norm` is the norm the method's analysis uses (`Method.norm(state)` at S_{t-1},
fixed given F_t): lp at the groups' p for LPSGD/LPSGDM, l2 for SGD and heavy ball, linf for sign
descent and Lion, the ellipsoid sqrt(sum a_j x_j^2) with Adam's / RMSprop's a = sqrt(v^) + eps for
those, the layerwise spectral norm for Scion and the clipped step; the black box's norm (l2 for a
class lpcheck does not know). Param groups must give one norm (groups may differ in lr, decay,
momentum; not in p). Where groups give no one norm (per-group p), `plan.norm` is None and
`plan.norm_error` (`paper_error` for LPSGD/LPSGDM) says why: the Probe refuses it unless it is given
a norm to measure in. `plan.paper` is set for LPSGD and LPSGDM: the paper's own forms (eq. 27-28,
43-44) apply to them. `plan.bounded` marks methods whose direction has norm <= 1 whatever the
gradient (an LMO step: sign, Signum, Lion, Scion, the unconstrained clipped step), for which Theorem
1's c3 has no role."""

from __future__ import annotations

import functools
import inspect
import time
from dataclasses import dataclass, field

import torch

from lpcheck import checks, grads, lp
from lpcheck import methods as M
from lpcheck.methods.base import Method

__all__ = ["BOUNDED", "Plan", "plan"]

BOUNDED = (
    "sign",
    "lion",
    "scion",
    "clipped",
)  # LMO steps: ||d|| <= 1 in their norm (clipped: unconstrained only)
PAPER = ("lpsgd", "lpsgdm")


class _Fallback(Exception):
    """This optimizer (or group) is not one the layer describes step for step: use the black box."""


@dataclass
class _Call:
    """One `Method.update` over the parameters that share its hyperparameters (as `as_optimizer`
    steps them)."""

    method: Method
    idx: list  # positions of its parameters in `params` (model order), in the optimizer's order
    state: dict  # S_{t-1} for these parameters
    coupled: list  # coupled weight decay lambda per parameter (0.0: none)


@dataclass
class Plan:
    """How the Probe measures one optimizer at one point (see the module docstring)."""

    name: str  # the method's name ('adam', 'lpsgdm', 'blackbox', ...)
    optimizer: str | None  # the optimizer's class 'module.Class', None for a Method given directly
    source: str  # 'layer' or 'blackbox'
    # per param group: lr, weight_decay (decoupled), beta, params, runs, spec, coupled_weight_decay
    groups: list
    # lpcheck.methods.Norm over `params` (model order); None with `norm_error` where there is none
    norm: object
    bounded: bool
    paper: dict | None = (
        None  # LPSGD/LPSGDM: p, eps, epoch, beta (number, per-coordinate tensor or None), m
    )
    calls: list = field(default_factory=list)
    blackbox: object = None
    order: list = field(
        default_factory=list
    )  # black box: position in `params` of each optimizer parameter
    params: list = field(default_factory=list)
    fallback: str | None = None
    paper_error: str | None = (
        None  # why LPSGD/LPSGDM groups have no one (p, eps): the paper's forms do not apply
    )
    norm_error: str | None = None  # why the groups give no one norm (then `norm` is None)
    seconds: float = (
        0.0  # host time spent in `direction` (the black box's overhead is read from it)
    )
    calls_made: int = 0

    @property
    def spec(self):
        specs = [g["spec"] for g in self.groups]
        return specs[0] if len(set(specs)) == 1 else specs

    def direction(self, g: torch.Tensor, theta: torch.Tensor, missing: tuple = ()) -> torch.Tensor:
        """d(g) at the state S_{t-1}: a flat tensor in g's dtype (theta: the point, flat, for
        methods that need it). `missing`: positions in `params` of the parameters this gradient
        does not reach (autograd gives them no gradient: an unused branch); the optimizer's step
        skips a parameter whose .grad is None (no momentum, no weight decay, no state change), so
        their direction is 0 and the rest is the method's update over the others."""
        start = time.perf_counter()
        try:
            if self.paper is not None:
                return self._zero(self._paper(g, missing), missing)
            if self.blackbox is not None:
                return self._blackbox(g, missing)
            return self._layer(g, theta, missing)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls_made += 1

    def step(self, theta: torch.Tensor, d: torch.Tensor, missing: tuple = ()) -> torch.Tensor:
        """The optimizer's step from theta with direction d, each group with its own lr and
        decoupled decay: theta (1 - lr lambda) - lr d (eq. 22 / 25); the `missing` parameters (no
        gradient) stay where they are, decay included, as torch's optimizers leave them."""
        groups = self.groups
        if len({(g["lr"], g["weight_decay"]) for g in groups}) == 1:
            lr, wd = groups[0]["lr"], groups[0]["weight_decay"]
            moved = theta * (1.0 - lr * wd) - lr * d
        else:
            moved = torch.empty_like(theta)
            for g in groups:
                lr, wd = g["lr"], g["weight_decay"]
                for start, end in g["runs"]:
                    moved[start:end] = theta[start:end] * (1.0 - lr * wd) - lr * d[start:end]
        for start, end in self._runs(missing):
            moved[start:end] = theta[start:end]
        return moved

    def momentum(self, missing: tuple = ()):
        """LPSGDM's m_{t-1} as eq. 41 sees it for a gradient that misses the `missing` parameters:
        0 there (their step is skipped, so v = 0 where g = 0 and m = 0)."""
        m = self.paper["m"]
        return m if m is None or not missing else self._zero(m, missing)

    def _runs(self, missing):
        """(start, end) in the flat vector of each parameter at the positions `missing`."""
        if not missing:
            return []
        where = _where(self.params)
        return [where[id(self.params[i])] for i in missing]

    def _zero(self, flat, missing):
        if not missing:
            return flat
        flat = flat.clone()
        for start, end in self._runs(missing):
            flat[start:end] = 0
        return flat

    # -- the three ways ------------------------------------------------------------------------

    def _paper(self, g, missing=()):
        """eq. 21 (LPSGD) or eq. 41-42 (LPSGDM, m_{t-1} fixed) on the flat vector, as the paper
        path's statistics."""
        P = self.paper
        m = self.momentum(missing)
        v = g if m is None else P["beta"] * m + (1.0 - P["beta"]) * g
        return lp.rescale(v, P["p"], P["eps"], check_finite=False)

    def _layer(self, g, theta, missing=()):
        gs = grads.unflatten(g, self.params)
        ts = grads.unflatten(theta.to(g.dtype), self.params)
        out = [torch.zeros_like(t) for t in gs]  # a parameter with no gradient: no step
        skip = set(missing)
        for call in self.calls:
            keep = [j for j, i in enumerate(call.idx) if i not in skip]
            if not keep:
                continue
            idx = [call.idx[j] for j in keep]
            state = call.state if len(keep) == len(call.idx) else _subset(call.state, keep)
            cg = [
                gs[i] if lam == 0 else gs[i] + lam * ts[i]
                for i, lam in zip(idx, (call.coupled[j] for j in keep))
            ]
            needs = call.method.needs_params(call.method.hp)
            d, _ = call.method.update(cg, state, params=[ts[i] for i in idx] if needs else None)
            for i, di in zip(idx, d):
                out[i] = di
        return torch.cat([d.reshape(-1) for d in out])

    def _blackbox(self, g, missing=()):
        gs = grads.unflatten(g, self.params)
        skip = set(missing) | {None}
        d, _ = self.blackbox.update([None if i in skip else gs[i] for i in self.order])
        out = [torch.zeros_like(t) for t in gs]  # torch does not move a parameter without .grad
        for i, di in zip(self.order, d):
            if i is not None and di is not None:
                out[i] = di
        return torch.cat([d.reshape(-1).to(g.dtype) for d in out])


def _subset(state, keep):
    """A method's state (key -> one tensor per parameter) for the parameters at positions `keep`."""
    return {k: [v[j] for j in keep] for k, v in state.items()}


# ---------------------------------------------------------------------------------------------
# the norm over all parameters from the calls' norms


def _combine(norms, idx_lists, params):
    """One norm over `params` from each call's norm over its parameters: lp of one p, one layerwise
    norm, or one ellipsoid (its a's in model order). Anything else has no one geometry: a
    ValueError naming the norms."""
    kinds = {type(n) for n in norms}
    if len(norms) == 1 and not isinstance(norms[0], M.Ellipsoidal):
        return norms[0]
    if kinds == {M.Ellipsoidal}:
        a = [None] * len(params)
        for n, idx in zip(norms, idx_lists):
            for i, ai in zip(idx, n.a):
                a[i] = ai
        return M.Ellipsoidal(a)
    if len({repr(n) for n in norms}) == 1 and kinds <= {M.Lp, M.Layerwise}:
        return norms[0]
    raise ValueError(
        f"the param groups give different norms ({', '.join(sorted({repr(n) for n in norms}))}): "
        "the assumptions use one norm over all coordinates; pass Probe(..., norm=...) to measure "
        "in one"
    )


# ---------------------------------------------------------------------------------------------
# optimizer -> layer methods (exact classes only), with their state S_{t-1}


def _zeros_or(t, p):
    if t is None:
        return torch.zeros_like(p)
    # torch SGD's momentum buffer is sparse after sparse gradients (Embedding(sparse=True))
    return t.detach().to_dense() if t.is_sparse else t.detach()


def _step_of(st):
    s = st.get("step")
    return (
        torch.zeros((), dtype=torch.float64)
        if s is None
        else torch.tensor(float(s), dtype=torch.float64)
    )


def _no_maximize(group):
    if group.get("maximize", False):
        raise _Fallback("maximize=True")


def _sgd(opt, group, ps):
    _no_maximize(group)
    mu = group["momentum"]
    if mu == 0:
        return M.make("sgd"), {}, group["weight_decay"], 0.0
    m = M.make("heavyball", momentum=mu, dampening=group["dampening"], nesterov=group["nesterov"])
    bufs = [opt.state.get(p, {}).get("momentum_buffer") for p in ps]
    state = {
        "momentum_buffer": [_zeros_or(b, p) for b, p in zip(bufs, ps)],
        "step": [torch.tensor(0.0 if b is None else 1.0, dtype=torch.float64) for b in bufs],
    }
    return m, state, group["weight_decay"], 0.0


def _adam(opt, group, ps):
    _no_maximize(group)
    decoupled = bool(group.get("decoupled_weight_decay", type(opt) is torch.optim.AdamW))
    m = M.make("adam", betas=tuple(group["betas"]), eps=group["eps"], amsgrad=group["amsgrad"])
    sts = [opt.state.get(p, {}) for p in ps]
    state = {k: [_zeros_or(st.get(k), p) for st, p in zip(sts, ps)] for k in m.state_keys(m.hp)}
    state["step"] = [_step_of(st) for st in sts]
    wd = group["weight_decay"]
    return m, state, (0.0 if decoupled else wd), (wd if decoupled else 0.0)


def _rmsprop(opt, group, ps):
    _no_maximize(group)
    m = M.make(
        "rmsprop",
        alpha=group["alpha"],
        eps=group["eps"],
        momentum=group["momentum"],
        centered=group["centered"],
    )
    sts = [opt.state.get(p, {}) for p in ps]
    state = {k: [_zeros_or(st.get(k), p) for st, p in zip(sts, ps)] for k in m.state_keys(m.hp)}
    return m, state, group["weight_decay"], 0.0


def _lion_pytorch(opt, group, ps):
    if getattr(opt, "decoupled_wd", False):
        raise _Fallback("decoupled_weight_decay=True (its decay is lr wd / init_lr)")
    if getattr(getattr(opt, "update_fn", None), "__module__", "") != "lion_pytorch.lion_pytorch":
        raise _Fallback("use_triton=True (the Triton kernel)")
    m = M.make("lion", betas=tuple(group["betas"]))
    state = {"exp_avg": [_zeros_or(opt.state.get(p, {}).get("exp_avg"), p) for p in ps]}
    return m, state, 0.0, group["weight_decay"]


def _lp_optim(opt, group, ps):
    from lpcheck.optim import LPSGDM

    if isinstance(opt, LPSGDM):
        m = M.make("lpsgdm", p=group["p"], eps=group["eps"], momentum=group["momentum"])
        state = {
            "momentum_buffer": [
                _zeros_or(opt.state.get(p, {}).get("momentum_buffer"), p) for p in ps
            ]
        }
        return m, state, 0.0, group["weight_decay"]
    return M.make("lpsgd", p=group["p"], eps=group["eps"]), {}, 0.0, 0.0


def _method_optimizer(opt, group, ps):
    hp = opt.method_hp(group)
    return opt.method.replace(**hp), opt.method_state(ps, hp), 0.0, group["weight_decay"]


def _reader(opt):
    """The function that reads a param group of `opt` as a layer method, or None (the black box)."""
    from lpcheck.methods.optimizer import MethodOptimizer
    from lpcheck.optim import LPSGD, LPSGDM

    t = type(opt)
    known = {
        torch.optim.SGD: _sgd,
        torch.optim.Adam: _adam,
        torch.optim.AdamW: _adam,
        torch.optim.RMSprop: _rmsprop,
        LPSGD: _lp_optim,
        LPSGDM: _lp_optim,
    }
    if t in known:
        return known[t]
    if isinstance(opt, MethodOptimizer) and inspect.unwrap(t.step) is inspect.unwrap(
        MethodOptimizer.step
    ):
        return _method_optimizer
    if (t.__module__, t.__qualname__) == ("lion_pytorch.lion_pytorch", "Lion"):
        return _lion_pytorch
    return None


# ---------------------------------------------------------------------------------------------


def _where(params):
    offset, where = 0, {}
    for p in params:
        where[id(p)] = (offset, offset + p.numel())
        offset += p.numel()
    return where


def _class_name(obj):
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def plan(target, params, *, state=None, lr=None, weight_decay=None) -> Plan:
    """The Plan for `target` (a torch.optim.Optimizer or a lpcheck.methods.Method) over `params`
    (model order).

    Reads the optimizer's param groups and state, changes nothing. ValueErrors name the argument.
    """
    if isinstance(target, M.BlackBox):
        if state is not None or lr is not None or weight_decay is not None:
            raise ValueError(
                "a BlackBox reads state, lr and weight_decay from its optimizer: pass the optimizer"
            )
        return _optimizer_plan(target.optimizer, params, box=target)
    if isinstance(target, Method):
        return _method_plan(target, params, state, lr, weight_decay)
    if isinstance(target, torch.optim.Optimizer):
        if state is not None or lr is not None or weight_decay is not None:
            raise ValueError(
                "state, lr and weight_decay are for a lpcheck.methods.Method; a torch optimizer's "
                "are its own (optimizer.state, param_groups)"
            )
        return _optimizer_plan(target, params)
    hint = " (a class: construct it first)" if isinstance(target, type) else ""
    raise ValueError(
        "optimizer must be a torch.optim.Optimizer instance or a lpcheck.methods.Method, got "
        f"{type(target).__name__}{hint}"
    )


def _trained(opt, params):
    """The optimizer's parameters, checked: every trainable parameter once, and besides them only
    frozen ones (requires_grad=False: `SGD(model.parameters())` on a partly frozen model; torch's
    step skips them, as the probe does)."""
    trainable = {id(p) for p in params}
    owned = [p for g in opt.param_groups for p in g["params"]]
    kept = [p for p in owned if id(p) in trainable]
    if (
        {id(p) for p in kept} != trainable
        or len(kept) != len(params)
        or any(p.requires_grad for p in owned if id(p) not in trainable)
    ):
        raise ValueError(
            "the optimizer must hold exactly the model's trainable parameters (and may hold frozen "
            "ones, requires_grad=False)"
        )
    return trainable


def _optimizer_plan(opt, params, box=None):
    trainable = _trained(opt, params)
    position = {id(p): i for i, p in enumerate(params)}
    where = _where(params)
    read = None if box is not None else _reader(opt)
    fallback = None
    entries = []
    if read is not None:
        try:
            for group in opt.param_groups:
                ps = [p for p in group["params"] if id(p) in trainable]
                if not ps:
                    continue  # frozen parameters alone: no step
                try:
                    entries.append((group, ps, *read(opt, group, ps)))
                except (
                    ValueError
                ) as e:  # a value the layer refuses but the optimizer takes: its own step decides
                    raise _Fallback(str(e)) from None
        except _Fallback as why:
            fallback, read = f"{_class_name(opt)}: {why}; measured through the black box", None
    if read is None:
        return _blackbox_plan(opt, params, position, where, box, fallback)
    groups, calls = [], {}
    for i, (group, ps, method, st, coupled, decoupled) in enumerate(entries):
        lr = checks.real(f"param group {i}: lr", group["lr"], low=0.0)
        decoupled = checks.real(f"param group {i}: weight_decay", decoupled, low=0.0)
        coupled = checks.real(f"param group {i}: weight_decay", coupled, low=0.0)
        groups.append(
            {
                "lr": lr,
                "weight_decay": decoupled,
                "coupled_weight_decay": coupled,
                "beta": float(group["momentum"]) if method.name == "lpsgdm" else None,
                "params": sum(p.numel() for p in ps),
                "runs": sorted(where[id(p)] for p in ps),
                "spec": method.spec(),
                "epoch": group.get("epoch"),
            }
        )
        key = (type(method), tuple(sorted(method.hp.items())))
        call = calls.setdefault(key, _Call(method, [], {k: [] for k in st}, []))
        call.idx += [position[id(p)] for p in ps]
        call.coupled += [coupled] * len(ps)
        dtype = _flat_dtype(params)
        for k, v in st.items():
            call.state[k] += _widened(v, dtype)
    return _finish(_name(calls), _class_name(opt), groups, list(calls.values()), params)


def _flat_dtype(params):
    """The dtype of the probe's flat vectors over `params` (theta, g, d): the parameters' dtypes
    promoted as torch.cat promotes them, half precision read in float32."""
    dtype = functools.reduce(torch.promote_types, [p.dtype for p in params])
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _widened(tensors, dtype):
    """State tensors in at least `dtype`, the gradients' dtype in `Plan.direction`: one float64
    parameter beside float32 ones makes every gradient float64, and torch's foreach ops refuse a
    float32 state beside a float64 gradient (half-precision state is read in float32 likewise);
    a wider tensor (Adam's float64 step count) is kept as it is."""
    return [
        t.to(torch.promote_types(t.dtype, dtype)) if t.is_floating_point() else t for t in tensors
    ]


def _name(calls):
    names = sorted({c.method.name for c in calls.values()})
    return names[0] if len(names) == 1 else "+".join(names)


def _method_plan(method, params, state, lr, weight_decay):
    if lr is None:
        raise ValueError(
            "lr is needed with a Method (the step the smoothness pairs take: theta (1 - lr lambda) "
            "- lr d)"
        )
    lr = checks.real("lr", lr, low=0.0)
    wd = checks.real("weight_decay", 0.0 if weight_decay is None else weight_decay, low=0.0)
    if lr * wd > 1:
        raise ValueError(
            "lr * weight_decay must be <= 1 (the step multiplies theta by 1 - lr * weight_decay), "
            f"got lr = {lr!r}, weight_decay = {wd!r}"
        )
    st = method.init(params) if state is None else state
    method._check_state(
        st, params, method.hp
    )  # a state of this method over these parameters, or a named ValueError
    n = len(params)
    groups = [
        {
            "lr": lr,
            "weight_decay": wd,
            "coupled_weight_decay": 0.0,
            "beta": float(method.hp["momentum"]) if method.name == "lpsgdm" else None,
            "params": sum(p.numel() for p in params),
            "runs": [(0, sum(p.numel() for p in params))],
            "spec": method.spec(),
            "epoch": None,
        }
    ]
    dtype = _flat_dtype(params)
    call = _Call(method, list(range(n)), {k: _widened(v, dtype) for k, v in st.items()}, [0.0] * n)
    return _finish(method.name, None, groups, [call], params)


def _finish(name, optimizer, groups, calls, params):
    """The plan; where the groups give no one geometry of their own, its reason is kept
    (`paper_error`, `norm_error`): a norm given to the Probe measures them all the same (each
    group steps by its own method)."""
    paper = paper_error = norm_error = None
    if all(c.method.name in PAPER for c in calls):
        try:
            paper = _paper(calls, groups, params)
        except ValueError as e:
            paper_error = str(e)
    try:
        norm = _combine(
            [c.method.norm(c.state, None) for c in calls], [c.idx for c in calls], params
        )
    except ValueError as e:
        norm, norm_error = None, str(e)
    bounded = all(
        c.method.name in BOUNDED and not c.method.hp.get("constrained", False) for c in calls
    )
    return Plan(
        name=name,
        optimizer=optimizer,
        source="layer",
        groups=groups,
        norm=norm,
        bounded=bounded,
        paper=paper,
        calls=calls,
        params=list(params),
        paper_error=paper_error,
        norm_error=norm_error,
    )


def _paper(calls, groups, params):
    """p, eps (one for all groups: Assumptions 1, 5-6 and Lemma 1 use one lp norm), epoch, beta and
    m_{t-1} flat."""
    first = calls[0].method.hp
    pairs = [(k, first[k], c.method.hp[k]) for c in calls[1:] for k in ("p", "eps")]
    epochs = sorted({g["epoch"] for g in groups}, key=str)
    pairs += [("epoch", epochs[0], epochs[1])] if len(epochs) > 1 else []
    for k, a, b in pairs:
        if a != b:
            raise ValueError(
                f"param groups disagree on {k} ({a!r} vs {b!r}): Assumptions 1 and 5-6 and Lemma 1 "
                "use one lp norm (and eq. 21 one p and eps) for all coordinates; per-group p is a "
                "block-wise geometry the paper does not analyse. Groups may differ in lr, "
                "weight_decay and momentum"
            )
    lp.rho(first["p"])
    m = beta = None
    if calls[0].method.name == "lpsgdm":
        bufs, betas = [None] * len(params), [None] * len(params)
        for c in calls:
            for i, b in zip(c.idx, c.state["momentum_buffer"]):
                bufs[i], betas[i] = b, float(c.method.hp["momentum"])
        m = grads.flatten([b.reshape(-1) for b in bufs])
        if len(set(betas)) == 1:
            beta = betas[0]
        else:  # per-group momentum: eq. 41 coordinate by coordinate
            beta = torch.cat(
                [
                    torch.full((p.numel(),), b, dtype=m.dtype, device=m.device)
                    for p, b in zip(params, betas)
                ]
            )
    return {
        "p": float(first["p"]),
        "eps": float(first["eps"]),
        "epoch": None if epochs[0] is None else int(epochs[0]),
        "beta": beta,
        "m": m,
    }


def _blackbox_plan(opt, params, position, where, box, fallback):
    box = box or M.BlackBox(opt)
    groups = []
    for i, group in enumerate(opt.param_groups):
        lr = checks.real(f"param group {i}: lr", group.get("lr", float("nan")), low=0.0)
        if lr == 0:
            raise ValueError(
                f"param group {i}: lr must be > 0 for the black box, got 0 (a warm-up's first "
                f"step?): it reads {type(opt).__name__}'s direction from its step divided by lr, "
                "and a step at lr 0 does not move; measure where every group's lr is > 0 (the "
                "classes lpcheck reads as layer methods, torch's SGD, Adam, AdamW, RMSprop, are "
                "measured at lr 0 too)"
            )
        lam = M.decoupled_lambda(opt, group, f"param group {i}: weight_decay")
        groups.append(
            {
                "lr": lr,
                "weight_decay": lam,
                "coupled_weight_decay": None,
                "beta": None,
                "params": sum(p.numel() for p in group["params"] if id(p) in where),
                "runs": sorted(where[id(p)] for p in group["params"] if id(p) in where),
                "spec": box.spec(),
                "epoch": None,
            }
        )
    # None: a frozen parameter the optimizer holds (it never gets a gradient)
    order = [position.get(id(p)) for g in opt.param_groups for p in g["params"]]
    # one step of a copy before any work: an optimizer that cannot step without a closure (LBFGS)
    # or on dense gradients (SparseAdam), or that ignores the weight decay it declares decoupled,
    # is refused here, not after the full-gradient pass
    box.check_decay(
        [None if i is None else torch.zeros_like(params[i], dtype=torch.float64) for i in order]
    )
    return Plan(
        name="blackbox",
        optimizer=_class_name(opt),
        source="blackbox",
        groups=groups,
        norm=box.norm(),
        bounded=False,
        blackbox=box,
        order=order,
        params=list(params),
        fallback=fallback,
    )
