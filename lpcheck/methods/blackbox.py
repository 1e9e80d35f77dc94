"""Any torch.optim.Optimizer as a method of the layer: its direction read from its own step on a
copy.

    # or from_optimizer(optimizer); any class, never seen before
    bb = BlackBox(optimizer)
    # at the optimizer's current parameters and state
    d, new_state = bb.update(grads)
    # at another state (a state_dict) or point
    d, new_state = bb.update(grads, state, params=theta)

The contract. For gradients g (one tensor per parameter, in param-group order) at parameters theta
and optimizer state S (a `state_dict()`; default: the optimizer's current ones), the black box
1. builds a clone of the optimizer: the same class, its instance attributes deep-copied with every
   parameter replaced by a detached copy of theta (in `dtype`, float64 by default), its state loaded
   from a deep copy of S with the class's own `load_state_dict` (so state tensors, step counters and
   any extra entries an optimizer keeps come back in its own format, cast as torch casts them);
2. sets each copy's .grad to a copy of g and calls the class's `step()` (no closure; an optimizer
   whose step needs one, e.g. LBFGS, is refused), under `torch.random.fork_rng`;
3. reads the direction of each parameter from the move, in its param group's own lr and
   weight decay:
       direction = -(theta' - (1 - lr lambda) theta) / lr      (lr > 0 required: a named ValueError)
   where lambda is the group's weight_decay only where the group declares it decoupled (below),
   else 0.
The direction is returned in each gradient's dtype (None where a gradient is None: torch does not
move such a parameter), and the new state is the clone's `state_dict()` after the step (its tensors
in the replay dtype). The original optimizer, its parameters, their .grad and the global RNG are
never changed; the clone's instance-level step hooks (and an LR scheduler's wrapper of `step`) are
left out.

Weight decay: decoupled (theta <- (1 - lr lambda) theta, kept apart so that estimators measure the
direction alone) where (1) the param group has decoupled_weight_decay = True (torch's Adam/AdamW),
(2) the optimizer class sets the attribute `decoupled_weight_decay = True` (the way to declare it
for a class lpcheck has never seen), or (3) the class is one known to decay that way: lpcheck's
LPSGDM and every `as_optimizer` optimizer (lpcheck.baselines.Lion among them), torch.optim.AdamW,
Adafactor and Muon, lion_pytorch's Lion (lambda = weight_decay / init_lr with its
decoupled_weight_decay=True: `decoupled_lambda`). Otherwise weight_decay (torch's SGD, Adam,
RMSprop: the L2 term g + lambda theta) is part of the direction, as it is part of the optimizer's
update. `check_decay` holds a declared decoupled decay to the optimizer's step (the Probe's plan
runs it before any work).

Why float64: the direction is a difference of parameters divided by lr; in float32 it would lose
log10(|theta| / (lr |d|)) of its 7 digits (a third of them at lr = 1e-3). dtype=None replays in the
parameters' own dtype (for optimizers that support no other, e.g. some fused kernels). Cost per
call: one copy of the parameters and of the state, and one optimizer step."""

from __future__ import annotations

import copy
from collections import OrderedDict, defaultdict

import torch

from lpcheck import checks
from lpcheck.methods import norms
from lpcheck.methods.base import Method, _tensors

__all__ = ["BlackBox", "from_optimizer", "decoupled_weight_decay", "decoupled_lambda"]

_STEP_HOOKS = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks")
_KNOWN_DECOUPLED = {  # (module, class) as torch names them: Adafactor, Muon say torch.optim
    ("torch.optim.adamw", "AdamW"),
    ("torch.optim", "Adafactor"),  # theta (1 - lr lambda), then its factored step
    ("torch.optim._adafactor", "Adafactor"),
    ("torch.optim", "Muon"),  # the same, then its orthogonalised momentum
    ("torch.optim._muon", "Muon"),
    ("lion_pytorch.lion_pytorch", "Lion"),
}


def decoupled_weight_decay(optimizer, group) -> bool:
    """Whether `group`'s weight_decay is decoupled (theta <- (1 - lr lambda) theta), by the rules
    above."""
    if "decoupled_weight_decay" in group:
        return bool(group["decoupled_weight_decay"])
    if getattr(type(optimizer), "decoupled_weight_decay", False) is True:
        return True
    from lpcheck.methods.optimizer import MethodOptimizer
    from lpcheck.optim import LPSGDM

    if isinstance(optimizer, (MethodOptimizer, LPSGDM)):
        return True
    return any((c.__module__, c.__name__) in _KNOWN_DECOUPLED for c in type(optimizer).__mro__)


def decoupled_lambda(optimizer, group, name="weight_decay") -> float:
    """lambda in theta <- (1 - lr lambda) theta for `group` (0 where its decay is not decoupled, or
    it has none): its weight_decay, except lion_pytorch's Lion with decoupled_weight_decay=True,
    which decays by lr weight_decay / init_lr (init_lr: the lr it was built with). `name` names
    the value in a ValueError."""
    if not decoupled_weight_decay(optimizer, group) or "weight_decay" not in group:
        return 0.0
    lam = checks.real(name, group["weight_decay"], low=0.0)
    lion = ("lion_pytorch.lion_pytorch", "Lion")
    if getattr(optimizer, "decoupled_wd", False) and any(
        (c.__module__, c.__name__) == lion for c in type(optimizer).__mro__
    ):
        lam /= checks.real("Lion's init_lr", optimizer._init_lr, low=0.0, low_open=True)
    return lam


def _params_of(optimizer) -> list:
    return [p for g in optimizer.param_groups for p in g["params"]]


def _clone(optimizer, originals, copies):
    """A second optimizer of the same class on `copies`, with an empty state (loaded afterwards)."""
    clone = object.__new__(type(optimizer))
    memo = {id(optimizer): clone, id(optimizer.state): defaultdict(dict)}
    memo.update({id(p): c for p, c in zip(originals, copies)})
    for name in _STEP_HOOKS:
        if hasattr(optimizer, name):
            memo[id(getattr(optimizer, name))] = OrderedDict()
    for key, value in optimizer.__dict__.items():
        if (
            key == "step"
        ):  # an instance-level wrapper (an LR scheduler's) would call the original's step
            continue
        clone.__dict__[key] = copy.deepcopy(value, memo)
    return clone


class BlackBox(Method):
    """A torch.optim.Optimizer instance as a method: direction and state read from its step on a
    copy."""

    name = "blackbox"
    summary = (
        "any torch.optim.Optimizer: the direction read from its own step on a copy of its state"
    )
    defaults: dict = {}
    elementwise = False

    def __init__(self, optimizer, *, norm=None, dtype=torch.float64):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(
                "optimizer must be a torch.optim.Optimizer instance, got "
                f"{type(optimizer).__name__}"
                + (
                    " (a class: construct it with the parameters first)"
                    if isinstance(optimizer, type)
                    else ""
                )
            )
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise ValueError(f"dtype must be None or a floating torch dtype, got {dtype!r}")
        self.optimizer, self.dtype, self.hp = optimizer, dtype, {}
        self.params = _params_of(optimizer)
        self._norm = None if norm is None else norms.parse(norm)

    def __repr__(self):
        return f"BlackBox({type(self.optimizer).__module__}.{type(self.optimizer).__qualname__})"

    def spec(self) -> str:
        return f"{type(self.optimizer).__module__}:{type(self.optimizer).__qualname__}"

    def __eq__(self, other):
        return isinstance(other, BlackBox) and other.optimizer is self.optimizer

    def __hash__(self):
        return id(self.optimizer)

    def needs_params(self, hp):
        return True

    def init(self, params=None, hp=None) -> dict:
        """A fresh state: the optimizer's state_dict with no per-parameter state (torch optimizers
        create theirs at the first step) and the current param groups."""
        groups = copy.deepcopy(self.optimizer.state_dict()["param_groups"])
        return {"state": {}, "param_groups": groups}

    def update(self, grads, state=None, hp=None, *, params=None, batched=False):
        """(direction, new_state): see the module docstring. `grads` may hold None (no direction
        there)."""
        if hp:
            raise ValueError(
                "a black box's hyperparameters are its param groups': change them in the state "
                "(state['param_groups']) or on the optimizer, not through hp"
            )
        if checks.boolean("batched", batched):
            raise ValueError(
                "batched=True is not possible for a black-box optimizer (it sees one problem): "
                "give each seed its own copy of the optimizer"
            )
        single = isinstance(grads, torch.Tensor)
        gs = self._grads(grads)
        thetas = self.params if params is None else _tensors("params", params)
        if [tuple(t.shape) for t in thetas] != [tuple(p.shape) for p in self.params]:
            want = [tuple(p.shape) for p in self.params]
            raise ValueError(
                f"params must have the optimizer's parameter shapes {want}, got "
                f"{[tuple(t.shape) for t in thetas]}"
            )
        state = self.optimizer.state_dict() if state is None else state
        if not isinstance(state, dict) or not {"state", "param_groups"} <= set(state):
            raise ValueError(
                "state must be a state_dict() of the optimizer (a dict with 'state' and "
                "'param_groups')"
            )
        copies = []
        for p, t in zip(self.params, thetas):
            data = t.detach().to(dtype=self.dtype or t.dtype, copy=True)
            copies.append(
                torch.nn.Parameter(data, requires_grad=p.requires_grad)
                if isinstance(p, torch.nn.Parameter)
                else data.requires_grad_(p.requires_grad)
            )
        clone = _clone(self.optimizer, self.params, copies)
        clone.load_state_dict(copy.deepcopy(state))
        for c, g in zip(copies, gs):
            c.grad = None if g is None else g.detach().to(c.dtype, copy=True)
        rates = self._rates(clone)
        before = [c.detach().clone() for c in copies]
        devices = sorted({c.device.index for c in copies if c.device.type == "cuda"})
        with torch.random.fork_rng(devices=[torch.device("cuda", i) for i in devices]):
            try:
                type(clone).step(clone)
            except TypeError as e:
                raise ValueError(
                    f"{type(self.optimizer).__name__}.step() failed without a closure ({e}); the "
                    "black box supports optimizers whose step needs no closure"
                ) from None
            except (
                Exception
            ) as e:  # e.g. SparseAdam on dense gradients: the optimizer's own refusal
                raise ValueError(
                    f"{type(self.optimizer).__name__}.step() raised {type(e).__name__} on a copy: "
                    f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                ) from None
        direction = []
        for c, b, g, (lr, lam) in zip(copies, before, gs, rates):
            direction.append(
                None if g is None else ((b * (1.0 - lr * lam) - c.detach()) / lr).to(g.dtype)
            )
        out = direction[0] if single else direction
        return out, clone.state_dict()

    def check_decay(self, grads):
        """One step of a copy at the optimizer's state (what `update` refuses, this refuses), and
        where a param group's weight decay is taken as decoupled (the rules above) with lambda > 0,
        a second with that group's lambda = 0. An optimizer that decays as declared, theta (1 - lr
        lambda) apart from its update, gives the same direction both times; one that ignores its
        weight_decay (or decays by another factor, or through its gradient) gives directions that
        differ by about lambda theta, which the direction would carry as if it were the method's
        own: a ValueError naming the groups. `grads` in float64 compare at full precision."""
        d, _ = self.update(grads)
        state = self.optimizer.state_dict()
        groups = state["param_groups"]
        decayed = [i for i, g in enumerate(groups) if self._decay(g) > 0]
        if not decayed:
            return
        plain = [dict(g, weight_decay=0.0) if i in decayed else g for i, g in enumerate(groups)]
        d0, _ = self.update(grads, {"state": state["state"], "param_groups": plain})
        bad = [i for i in decayed if not self._decays_as_declared(i, d, d0)]
        if bad:
            raise ValueError(
                f"{type(self.optimizer).__name__}: param group(s) {bad} declare decoupled weight "
                f"decay (weight_decay = {[groups[i]['weight_decay'] for i in bad]}), but its step "
                "is not theta (1 - lr weight_decay) minus lr times its step at weight_decay = 0 "
                "(it ignores weight_decay, or decays otherwise): the direction would carry "
                "-weight_decay * theta. Declare decoupled_weight_decay = False (the decay is then "
                "part of the direction) or fix its step"
            )

    def _decay(self, group):
        return decoupled_lambda(self.optimizer, group)

    def _decays_as_declared(self, i, d, d0):
        """Whether group i's directions with and without its decoupled decay agree, to rounding
        (the replay dtype's, amplified by 1/lr) and far below lambda |theta|."""
        group = self.optimizer.param_groups[i]
        lr, lam = checks.real("lr", group["lr"]), self._decay(group)
        start = sum(len(g["params"]) for g in self.optimizer.param_groups[:i])
        for j, p in enumerate(group["params"], start):
            if d[j] is None or d0[j] is None:
                continue
            diff = (d[j] - d0[j]).abs()
            theta = float(p.detach().abs().max()) if p.numel() else 0.0
            if not bool(torch.isfinite(diff).all()) or theta == 0:
                continue  # nothing to tell: a non-finite step, or theta = 0 where decay is void
            eps = torch.finfo(self.dtype or p.dtype).eps
            tol = 1e-3 * lam * theta + 64 * eps * (float(d[j].abs().max()) + theta / lr)
            if float(diff.max()) > tol:
                return False
        return True

    def _grads(self, grads):
        gs = (
            [grads]
            if isinstance(grads, torch.Tensor)
            else list(grads)
            if hasattr(grads, "__iter__")
            else None
        )
        if gs is None or len(gs) != len(self.params):
            raise ValueError(
                f"grads must hold one tensor (or None) per parameter of the optimizer "
                f"({len(self.params)}), got {type(grads).__name__}"
                + (f" of length {len(gs)}" if gs is not None else "")
            )
        for i, (g, p) in enumerate(zip(gs, self.params)):
            if g is None:
                continue
            if (
                not isinstance(g, torch.Tensor)
                or not g.is_floating_point()
                or tuple(g.shape) != tuple(p.shape)
            ):
                raise ValueError(
                    f"grads[{i}] must be a floating tensor of shape {tuple(p.shape)}, got "
                    + (
                        f"shape {tuple(g.shape)}, dtype {g.dtype}"
                        if isinstance(g, torch.Tensor)
                        else type(g).__name__
                    )
                )
        return gs

    def _rates(self, clone):
        """(lr, decoupled lambda) per parameter, from the clone's groups as loaded (before its
        step)."""
        out = []
        for i, group in enumerate(clone.param_groups):
            lr = checks.real(f"param group {i}: lr", group.get("lr", float("nan")))
            if not lr > 0:
                raise ValueError(
                    f"param group {i}: lr must be > 0 for a black-box direction (the direction is "
                    f"the step divided by lr), got {lr!r}"
                )
            lam = decoupled_lambda(clone, group, f"param group {i}: weight_decay")
            out.extend([(lr, lam)] * len(group["params"]))
        return out

    def norm(self, state=None, hp=None):
        """The norm given at construction; else the optimizer's own where lpcheck knows it
        (LPSGD/LPSGDM: lp at the groups' p; an `as_optimizer` optimizer: its method's norm at its
        state); else l2."""
        if self._norm is not None:
            return self._norm
        from lpcheck.methods.optimizer import MethodOptimizer
        from lpcheck.optim import LPSGD, LPSGDM

        opt = self.optimizer
        if isinstance(opt, (LPSGD, LPSGDM)):
            ps = {float(g["p"]) for g in opt.param_groups}
            if len(ps) != 1:
                raise ValueError(
                    f"the param groups use different p {sorted(ps)}: no one lp norm; pass norm="
                )
            return norms.Lp(ps.pop())
        if isinstance(opt, MethodOptimizer):
            return opt.method_norm()
        return norms.Lp(2.0)


def from_optimizer(optimizer, *, norm=None, dtype=torch.float64) -> BlackBox:
    """`BlackBox(optimizer)`: any torch.optim.Optimizer instance as a method of the layer."""
    return BlackBox(optimizer, norm=norm, dtype=dtype)
