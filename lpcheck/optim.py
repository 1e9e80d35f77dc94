"""LPSGD (Algorithm 1) and LPSGDM (Algorithm 2) as torch.optim optimizers.

Both follow torch.optim: param groups with their own hyperparameters, `closure`, `zero_grad`,
`state_dict`/`load_state_dict` (the epoch and p live in each param group, so they are saved and
restored exactly), and torch's LR schedulers and `torch.amp.GradScaler` work unchanged.

Three code paths compute the same step:
- fused (`fused=True`): one pass over memory per bucket, `lpcheck.fused` (torch.compile on CPU, a
  Triton kernel on CUDA); the foreach path is its reference and its fallback where it does not apply
  (`lpcheck.fused.applies`). It becomes the default for CUDA tensors (as in torch) once the kernel
  has been validated on a GPU (`lpcheck.fused.AUTO_ON_CUDA`, off until then);
- foreach (the default elsewhere): multi-tensor ops over all parameters of a group, bucketed by
  device and dtype, with (|m| + eps)^-rho taken as exp(-rho * log(|m| + eps)) in a reused workspace;
- per-tensor (foreach=False): the reference, one parameter at a time through `lpcheck.lp.rescale`,
  which the proof gate ties to the paper's eq. 21. Tests hold the three paths together.

Arguments are checked before anything changes (`lpcheck.checks`): a new param group before it is
added, a state dict against this optimizer's parameters before load_state_dict touches anything,
and every group's hyperparameters at every step, since an LR scheduler or a user may change them
(a few scalar checks per group and dtype: no pass over memory). Numbers are taken as torch takes
them; values that round to 0 or overflow in the step's math dtype are refused by name.

Passes over memory per foreach LPSGDM step (d = number of parameters): finite check 1 (a norm of
the gradients), EMA 1 (lerp), rescale factor 6 (copy, abs, +eps, log, *-rho, exp), apply 1
(addcmul), weight decay 1 if lambda > 0. Temporaries: none
after the first step (the workspace holds d values; float32 for half/bfloat16 parameters, so the
rescale is computed in float32 math). At rho = 0 (p = 2) the rescale is skipped.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from lpcheck import checks, lp
from lpcheck import fused as _fused
from lpcheck.schedule import check_epoch, check_p_max, check_total_epochs, cosine_p

if TYPE_CHECKING:  # an annotation only: not every torch the range allows need export it
    from torch.optim.optimizer import ParamsT

__all__ = ["LPSGD", "LPSGDM", "NonFiniteGradientError"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


class NonFiniteGradientError(FloatingPointError):
    """A gradient holds inf or nan; the step was not taken and the optimizer state is unchanged."""


# ---------------------------------------------------------------------------------------------
# argument checks (ValueError naming the argument and its allowed range, before anything changes)


class _Hyper(NamedTuple):
    """One group's hyperparameters for one step, as checked Python floats (the foreach ops and the
    compiled step take Python numbers, never a tensor lr)."""

    lr: float
    eps: float
    p: float
    rho: float
    beta: float | None  # None for LPSGD
    weight_decay: float


def _math_dtype(dtype: torch.dtype) -> Any:
    """The dtype the step computes in: float32 for half/bfloat16 parameters (the workspace and the
    ops' scalars), else the parameters' own."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def _hyper(group: dict, with_momentum: bool) -> _Hyper:
    """The hyperparameters the step uses, checked (the per-step check: a few scalars per group).

    lr * weight_decay <= 1: eq. 25's factor 1 - lr lambda is the paper's shrinkage ("an additional
    deterministic contraction", Section 5.3) only in [0, 1); above 1 it flips the weights' sign
    every step. A factor that rounds to 1 in the parameters' dtype (lr lambda below its resolution,
    e.g. at the end of a cosine LR schedule) is no error: the decay is then below what the dtype can
    hold.
    """
    lr = checks.real("lr", group["lr"], low=0.0)
    eps = checks.real("eps", group["eps"], low=0.0, low_open=True)
    p = checks.real("p", group["p"], low=2.0, finite=False)
    beta, wd = None, 0.0
    if with_momentum:
        beta = checks.probability("momentum", group["momentum"])
        wd = checks.real("weight_decay", group["weight_decay"], low=0.0)
        if lr * wd > 1:
            raise ValueError(
                f"lr * weight_decay must be <= 1 (eq. 25 shrinks theta by 1 - lr * weight_decay), "
                f"got lr = {lr!r}, weight_decay = {wd!r}: lr * weight_decay = {lr * wd!r}"
            )
    return _Hyper(lr, eps, p, lp.rho(p), beta, wd)


def _check_dtype(h: _Hyper, dtype: torch.dtype) -> None:
    """Hyperparameters that round to 0 or overflow in the step's math dtype (per group and dtype,
    never per element): a non-zero lr that is 0 there takes no step; eps that is 0 there makes
    eq. 21 0/0 at a zero gradient; eps^-rho beyond the dtype's range makes it inf * 0 = NaN."""
    math_dtype = _math_dtype(dtype)
    try:
        checks.representable("lr", h.lr, math_dtype)
    except ValueError as e:
        raise ValueError(f"{e}: the step of {dtype} parameters would be 0 or inf") from None
    try:
        checks.representable("eps", h.eps, math_dtype)
    except ValueError as e:
        raise ValueError(
            f"{e}: |g| + eps would be 0 at a zero gradient ({dtype} parameters), and eq. 21 "
            "0/0 = NaN"
        ) from None
    try:
        checks.power_representable("eps", h.eps, h.rho, math_dtype)
    except ValueError as e:
        raise ValueError(
            f"{e}: at p = {h.p:g} (rho = {h.rho:g}) eq. 21 would be 0 * inf = NaN at a zero "
            f"gradient ({dtype} parameters)"
        ) from None


@contextlib.contextmanager
def _naming(where: str, *, prefix: bool = False) -> Iterator[None]:
    """Add where (e.g. 'param group 1') to a ValueError raised inside, after it or, with prefix,
    before."""
    try:
        yield
    except ValueError as e:
        raise ValueError(f"{where}: {e}" if prefix else f"{e} ({where})") from None


def _tensors_of(params: Any, name: str = "params") -> Any:
    """(params as a list, the tensors in it): torch's forms, a tensor, an iterable of tensors or of
    (name, tensor) pairs; a set is refused (its order changes between runs, as torch says)."""
    torch_ = torch
    if isinstance(params, torch_.Tensor):
        params = [params]
    elif isinstance(params, (set, frozenset)):
        raise ValueError(
            f"{name} must be an ordered collection (a list), not a set: the order of a set changes "
            "between runs"
        )
    elif isinstance(params, (str, bytes, dict)) or not hasattr(params, "__iter__"):
        raise ValueError(
            f"{name} must be an iterable of tensors (or of (name, tensor) pairs), got "
            f"{type(params).__name__}"
        )
    params = list(params)
    tensors = [
        p[1] if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) else p
        for p in params
    ]
    for i, t in enumerate(tensors):
        if not isinstance(t, torch_.Tensor):
            raise ValueError(f"{name} must hold tensors, got {type(t).__name__} at position {i}")
    return params, tensors


def _check_param_tensors(tensors: Any, groups: Any, name: str = "params") -> None:
    """Leaf, dense, real floating tensors, none twice and none already in another group (torch only
    warns about a parameter twice in one group; here it would take two steps per step)."""
    seen: dict = {}
    for i, t in enumerate(tensors):
        if not (t.is_leaf or t.retains_grad):
            raise ValueError(
                f"{name}[{i}] is not a leaf tensor (it was computed from others); optimize the "
                "leaf, e.g. an nn.Parameter"
            )
        if t.layout != torch.strided:
            raise ValueError(f"{name}[{i}] must be a dense tensor, got layout {t.layout}")
        if t.device.type == "meta":  # no values: the first step would fail deep inside torch
            raise ValueError(
                f"{name}[{i}] is on the meta device (it has a shape but no values): move the model "
                "to a real device (e.g. model.to_empty(device='cpu') and initialise it) first"
            )
        if t.is_complex() or not t.is_floating_point():
            raise ValueError(
                f"{name}[{i}] must be a real floating-point tensor, got dtype {t.dtype}"
            )
        if id(t) in seen:
            raise ValueError(
                f"{name}[{i}] is {name}[{seen[id(t)]}] again: a parameter may appear once"
            )
        seen[id(t)] = i
    for j, group in enumerate(groups):
        for t in group["params"]:
            if id(t) in seen:
                raise ValueError(
                    f"{name}[{seen[id(t)]}] is already in param group {j}: a parameter may be in "
                    "one group only"
                )


def _check_state_entry(key: tuple, entry: Any, param: Any, allowed: tuple, owner: str) -> None:
    """One parameter's saved state: only `allowed` keys, each a finite tensor of the parameter's
    shape (finite after the cast to the parameter's dtype that torch's load_state_dict makes)."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"state_dict['state'][{key!r}] must be a dict, got {type(entry).__name__}")
    extra = sorted(map(str, set(entry) - set(allowed)))
    if extra:
        raise ValueError(
            f"state_dict['state'][{key!r}] has keys {extra} that {owner} does not keep "
            f"(it keeps {list(allowed) or 'none'}): a state dict of another optimizer?"
        )
    for name, value in entry.items():
        where = f"state_dict['state'][{key!r}][{name!r}]"
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{where} must be a tensor, got {type(value).__name__}")
        if value.layout != torch.strided or value.is_complex() or not value.is_floating_point():
            raise ValueError(
                f"{where} must be a dense real floating-point tensor, got {value.dtype} "
                f"({value.layout})"
            )
        if value.shape != param.shape:
            raise ValueError(
                f"{where} must have its parameter's shape {tuple(param.shape)}, got "
                f"{tuple(value.shape)}"
            )
        if value.numel() and not bool(torch.isfinite(value.to(param.dtype)).all()):
            raise ValueError(
                f"{where} must be finite in {param.dtype}, got inf or nan entries: loading it "
                "would make every later step non-finite"
            )


class _CheckedOptimizer(torch.optim.Optimizer):
    """torch.optim.Optimizer whose add_param_group and load_state_dict check everything before they
    change anything. Subclasses say what a group needs (`_complete`, `_check_group`) and what
    state a parameter keeps (`_STATE_KEYS`); `_REQUIRED` are the group keys a state dict must
    have."""

    _name = "optimizer"
    _STATE_KEYS: tuple = ()
    _REQUIRED: tuple[str, ...] = ()
    _OPTIONAL: dict = {}  # group keys older state dicts may lack, with the value they stand for

    def __init__(self, params: Any, defaults: dict) -> None:
        if isinstance(params, (torch.Tensor, Mapping)):
            what = "one tensor" if isinstance(params, torch.Tensor) else "one param group dict"
            raise ValueError(
                f"params must be an iterable of tensors or of param group dicts, got {what}: pass "
                "[it]"
            )
        if isinstance(params, (set, frozenset, str, bytes)) or not hasattr(params, "__iter__"):
            _tensors_of(
                params
            )  # the same refusal as a group's params (a set, as torch refuses it there)
        params = list(params)
        if not params:
            raise ValueError(
                "params must hold at least one tensor or param group, got an empty list"
            )
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        """torch's add_param_group, after checking the whole new group: a bad group is never
        added."""
        if not isinstance(param_group, Mapping):
            raise ValueError(f"param_group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry (the tensors to optimize)")
        group = dict(param_group)
        group["params"], tensors = _tensors_of(group["params"])
        _check_param_tensors(tensors, self.param_groups)
        with _naming(f"param group {len(self.param_groups)}"):
            group.update(self._complete(group))
            group.update(self._check_group(group, tensors))
        super().add_param_group(group)

    def _complete(self, group: dict) -> dict:
        """The group's missing values (defaults, derived values); raises on conflicting ones."""
        return {k: v for k, v in self.defaults.items() if k not in group}

    def _check_group(self, group: dict, tensors: Any) -> dict:
        """Checks a complete group against its parameters; returns normalised values (Python
        numbers)."""
        raise NotImplementedError

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's load_state_dict, after checking the whole state dict against this optimizer's
        parameters: on any error the optimizer's groups and state are exactly as before. The check
        sees the state dict as torch's own load would: after the registered pre-hooks (which may
        bring an older format up to date), which then run once, here."""
        if not isinstance(state_dict, Mapping):
            raise ValueError(
                "state_dict must be a dict (as state_dict() returns), got "
                f"{type(state_dict).__name__}"
            )
        state_dict = dict(state_dict)  # a shallow copy, as torch's
        for hook in list(self._optimizer_load_state_dict_pre_hooks.values()):
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        self._check_state_dict(state_dict)
        hooks, self._optimizer_load_state_dict_pre_hooks = (
            self._optimizer_load_state_dict_pre_hooks,
            OrderedDict(),
        )
        try:
            super().load_state_dict(state_dict)
        finally:
            self._optimizer_load_state_dict_pre_hooks = hooks

    def _check_state_dict(self, state_dict: dict) -> None:
        if not isinstance(state_dict, Mapping) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError(
                "state_dict must be a dict with 'state' and 'param_groups' (as state_dict() "
                f"returns), got {type(state_dict).__name__}"
                + (
                    f" with keys {sorted(map(str, state_dict))}"
                    if isinstance(state_dict, Mapping)
                    else ""
                )
            )
        saved_groups, state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not all(
            isinstance(g, Mapping) for g in saved_groups
        ):
            raise ValueError("state_dict['param_groups'] must be a list of dicts")
        if not isinstance(state, Mapping):
            raise ValueError(f"state_dict['state'] must be a dict, got {type(state).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict has {len(saved_groups)} param groups, this {self._name} has "
                f"{len(self.param_groups)}"
            )
        params_by_id = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            with _naming(f"state_dict['param_groups'][{i}]", prefix=True):
                ids = saved.get("params")
                if not isinstance(ids, (list, tuple)) or any(type(k) is not int for k in ids):
                    raise ValueError("params must be a list of integer parameter ids")
                if len(ids) != len(group["params"]):
                    raise ValueError(
                        f"params lists {len(ids)} parameters, this {self._name}'s param group {i} "
                        f"has {len(group['params'])}"
                    )
                for k, param in zip(ids, group["params"]):
                    if k in params_by_id:
                        raise ValueError(f"params lists parameter id {k} twice")
                    params_by_id[k] = param
                missing = [k for k in self._REQUIRED if k not in saved]
                if missing:
                    raise ValueError(f"has no {missing}: not a state dict of {self._name}")
                self._check_saved_group(dict(self._OPTIONAL, **saved), group["params"])
        for key, entry in state.items():
            if key not in params_by_id:
                raise ValueError(
                    f"state_dict['state'] has an entry for parameter id {key!r}, which no param "
                    "group lists"
                )
            _check_state_entry(key, entry, params_by_id[key], self._STATE_KEYS, self._name)

    def _check_saved_group(self, saved: dict, tensors: Any) -> None:
        self._check_group(saved, tensors)


# ---------------------------------------------------------------------------------------------
# gradient transforms, one short function each (foreach form)


def _ema_(bufs: list[torch.Tensor], grads: list[torch.Tensor], beta: float) -> None:
    """eq. 23: m_t = beta m_{t-1} + (1 - beta) g_t.

    For beta >= 1/2 as one lerp pass, m += (1 - beta)(g - m). For smaller beta, lerp's weight
    1 - beta rounds and lerp then uses 1 - fl(1 - beta) in place of beta, which loses beta's digits
    when beta is tiny (the proof gate's conformance check found beta = 1e-13 off by 0.08%): two
    passes there.
    """
    if beta >= 0.5:
        torch._foreach_lerp_(bufs, grads, 1.0 - beta)
    else:
        torch._foreach_mul_(bufs, beta)
        torch._foreach_add_(bufs, grads, alpha=1.0 - beta)


def _decay_(params: Any, lr: float, weight_decay: float) -> None:
    """eq. 25, decoupled: theta <- (1 - lr lambda) theta."""
    if weight_decay != 0:
        torch._foreach_mul_(params, 1.0 - lr * weight_decay)


def _rescale_factor_into(
    ws: list[torch.Tensor], direction: list[torch.Tensor], rho: float, eps: float
) -> None:
    """eq. 21/24's denominator into the workspace: ws = (|direction| + eps)^-rho, as exp(-rho
    log(.))."""
    torch._foreach_copy_(ws, direction)
    torch._foreach_abs_(ws)
    torch._foreach_add_(ws, eps)
    torch._foreach_log_(ws)
    torch._foreach_mul_(ws, -rho)
    torch._foreach_exp_(ws)


def _apply_(params: Any, update: list[torch.Tensor], lr: float, factor: Any = None) -> None:
    """eq. 22/25: theta <- theta - lr * update (* factor, elementwise, when given)."""
    if factor is None:
        torch._foreach_add_(params, update, alpha=-lr)
    else:
        torch._foreach_addcmul_(params, update, factor, value=-lr)


def _all_finite(tensors: Any) -> bool:
    """One summing pass (faster than a norm on CPU, and a sum of finite entries overflows later than
    a sum of squares); only when a sum is non-finite (an inf or nan entry, or an overflow) is each
    tensor checked exactly. Half-precision sums accumulate into float32, so that finite float16
    gradients (max 65504) do not overflow into the slow exact path."""
    sums = [t.sum(dtype=torch.float32) if t.dtype in _LOW_PRECISION else t.sum() for t in tensors]
    if bool(torch.isfinite(torch.stack(sums)).all()):
        return True
    return all(bool(torch.isfinite(t).all()) for t in tensors)


# ---------------------------------------------------------------------------------------------


# Hyperparameters of torch.optim's optimizers that LPSGD/LPSGDM lack: a param group (or a state
# dict) carrying one would run without it, silently (maximize=True would descend; betas would not be
# Adam's). Other extra keys stay allowed, as in torch: LR schedulers add initial_lr, max_lr, ...
_FOREIGN_KEYS = frozenset(
    {
        "maximize",
        "betas",
        "nesterov",
        "dampening",
        "amsgrad",
        "alpha",
        "centered",
        "lr_decay",
        "initial_accumulator_value",
        "momentum_decay",
        "decoupled_weight_decay",
        "lambd",
        "t0",
        "etas",
        "step_sizes",
    }
)


class _LpOptimizer(_CheckedOptimizer):
    _name = "LPSGD"
    _with_momentum = False
    _REQUIRED: tuple[str, ...] = (
        "lr",
        "eps",
        "p",
        "p_max",
        "total_epochs",
        "epoch",
        "foreach",
        "check_finite",
    )
    _OPTIONAL = {"fused": False}  # checkpoints from before the fused path

    def __init__(self, params: Any, defaults: dict, foreach: Any, fused: Any) -> None:
        foreach = checks.boolean("foreach", foreach, allow_none=True)
        fused = checks.boolean("fused", fused, allow_none=True)
        if fused and foreach:
            raise ValueError("foreach and fused cannot both be True")
        if (defaults["p_max"] is None) == (defaults["p"] is None):
            raise ValueError("give exactly one of p_max (cosine schedule, eq. 19) or p (fixed p)")
        # fused=None picks the fused step for CUDA tensors, unless foreach was chosen explicitly (as
        # torch)
        fused = None if fused is None and foreach is None else bool(fused)
        defaults = dict(
            defaults,
            foreach=True if foreach is None else foreach,
            fused=fused,
            check_finite=checks.boolean("check_finite", defaults.get("check_finite", True)),
        )
        self._workspace: dict = {}
        super().__init__(params, defaults)

    def __setstate__(self, state: Any) -> None:
        super().__setstate__(state)
        self._workspace = {}
        for group in self.param_groups:  # checkpoints from before the fused path
            group.setdefault("fused", False)

    # -- param groups -------------------------------------------------------------------------

    def _complete(self, group: dict) -> dict:
        """Defaults, the epoch (the optimizer's current one) and, for a scheduled group, p by
        eq. 19."""
        if group.get("p") is not None and group.get("p_max") is not None:
            raise ValueError("give either p_max (cosine schedule, eq. 19) or p (fixed p), not both")
        out: dict = {}
        if group.get("p") is not None and "p_max" not in group:
            out["p_max"] = None  # a fixed-p group under scheduled defaults
        if group.get("p_max") is not None and "p" not in group:
            out["p"] = None  # a scheduled group under fixed-p defaults
        out.update({k: v for k, v in self.defaults.items() if k not in group and k not in out})
        full = dict(group, **out)
        if (full["p_max"] is None) == (full["p"] is None):
            raise ValueError("give exactly one of p_max (cosine schedule, eq. 19) or p (fixed p)")
        out["epoch"] = self.param_groups[0]["epoch"] if self.param_groups else 1
        if full["p_max"] is not None:
            if full["total_epochs"] is None:
                raise ValueError(
                    "total_epochs is required with p_max (eq. 19 needs S); pass p=... for a fixed p"
                )
            out["p"] = cosine_p(out["epoch"], full["total_epochs"], full["p_max"])
        return out

    def _check_group(self, group: dict, tensors: Any) -> dict:
        """Every key of a complete group, against its parameters' dtypes and devices. Returns the
        values as Python numbers (a tensor lr stays the tensor, as in torch, so LR schedulers
        fill it in place)."""
        if not self._with_momentum and ("momentum" in group or "weight_decay" in group):
            raise ValueError(
                "momentum and weight_decay are LPSGDM's (Algorithm 2); LPSGD (Algorithm 1) would "
                "ignore them: use LPSGDM, or a state dict of LPSGD"
            )
        foreign = sorted(_FOREIGN_KEYS.intersection(group))
        if foreign:
            raise ValueError(
                f"{foreign[0]} is a setting of other torch optimizers that {self._name} does not "
                f"have: it would be ignored (its settings: {', '.join(self._settings())})"
            )
        h = _hyper(group, self._with_momentum)
        p_max, total, epoch = group["p_max"], group["total_epochs"], group["epoch"]
        if p_max is not None:
            p_max = check_p_max(p_max)
            if total is None:
                raise ValueError(
                    "total_epochs is required with p_max (eq. 19 needs S); pass p=... for a fixed p"
                )
        total = None if total is None else check_total_epochs(total)
        epoch = check_epoch(epoch, total)
        if p_max is not None:
            expected = cosine_p(epoch, total, p_max)
            if not math.isclose(h.p, expected, rel_tol=1e-12):
                raise ValueError(
                    f"p = {h.p!r} is not eq. 19's p_s = {expected!r} at epoch {epoch} of "
                    f"total_epochs = {total} from p_max = {p_max!r}"
                )
        foreach = checks.boolean("foreach", group["foreach"], allow_none=True)
        fused = checks.boolean("fused", group["fused"], allow_none=True)
        check_finite = checks.boolean(
            "check_finite", group["check_finite"]
        )  # (a group's foreach is the
        # path a fused group falls back to, so both True is fine here, unlike the constructor's
        # arguments)
        for dtype in {t.dtype for t in tensors}:
            _check_dtype(h, dtype)
        if fused:
            _check_fused_devices(tensors)
        out = dict(
            lr=group["lr"] if isinstance(group["lr"], torch.Tensor) else h.lr,
            eps=h.eps,
            p=h.p,
            p_max=p_max,
            total_epochs=total,
            epoch=epoch,
            foreach=foreach,
            fused=fused,
            check_finite=check_finite,
        )
        if self._with_momentum:
            out.update(momentum=h.beta, weight_decay=h.weight_decay)
        return out

    def _settings(self) -> list[str]:
        names = ["lr", "p_max", "total_epochs", "p", "eps"]
        return names + (["momentum", "weight_decay"] if self._with_momentum else [])

    def set_epoch(self, epoch: int) -> None:
        """Enter epoch s (1-based, as in Algorithms 1-2): scheduled groups take p = p_s of eq.
        19."""
        epoch = checks.integer("epoch", epoch)
        new = []
        for i, group in enumerate(self.param_groups):  # validate all before changing any
            with _naming(f"param group {i}"):
                if group["p_max"] is not None:
                    new.append(cosine_p(epoch, group["total_epochs"], group["p_max"]))
                else:
                    check_epoch(epoch, group["total_epochs"])
                    new.append(group["p"])
        for group, p in zip(self.param_groups, new):
            group["p"], group["epoch"] = p, epoch

    # -- the step -----------------------------------------------------------------------------

    def _buckets(self, group: dict, group_index: int) -> Any:
        """Parameters with a gradient, bucketed by (device, dtype): {key: (params, grads)}."""
        buckets: defaultdict[tuple, tuple[list, list]] = defaultdict(lambda: ([], []))
        for i, p in enumerate(group["params"]):
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise ValueError(
                    f"{self._name} does not support sparse gradients (param group {group_index}, "
                    f"parameter {i})"
                )
            if p.is_complex():
                raise ValueError(
                    f"{self._name} does not support complex parameters (param group {group_index}, "
                    f"parameter {i})"
                )
            params, grads = buckets[(p.device, p.dtype)]
            params.append(p)
            grads.append(p.grad)
        return buckets

    def _buffers(self, params: Any, created: list) -> list:
        """The momentum buffers of `params`, m_{-1} = 0 where new (Algorithm 2, line 1); new ones
        are listed in `created`, so that a step refused later can take them back."""
        if not self._with_momentum:
            return []
        bufs = []
        for p in params:
            had_state = p in self.state
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                created.append((p, had_state))
            bufs.append(state["momentum_buffer"])
        return bufs

    def _take_back(self, created: list) -> None:
        for p, had_state in created:
            if had_state:
                del self.state[p]["momentum_buffer"]
            else:
                del self.state[p]

    def _check_finite(self, group: dict, group_index: int, grads: list[torch.Tensor]) -> None:
        if group["check_finite"] and not _all_finite(grads):
            self._raise_non_finite(group, group_index, grads)

    def _raise_non_finite(self, group: dict, group_index: int, grads: list[torch.Tensor]) -> None:
        bad = next((i for i, g in enumerate(grads) if not bool(torch.isfinite(g).all())), None)
        if (
            bad is None
        ):  # every entry is finite after all (a flag is never trusted without this look)
            return
        index = next(i for i, p in enumerate(group["params"]) if p.grad is grads[bad])
        raise NonFiniteGradientError(
            f"{self._name}: non-finite gradient (inf or nan) in param group {group_index}, "
            f"parameter {index} (shape {tuple(grads[bad].shape)}); the step was not taken and the "
            "optimizer state is unchanged. Under torch.amp, torch.amp.GradScaler skips such steps "
            "for you."
        )

    def _path(
        self,
        group: dict,
        key: tuple,
        params: Any,
        grads: list[torch.Tensor],
        bufs: list[torch.Tensor],
        eps: float | None = None,
    ) -> str:
        """'fused', 'foreach' or 'reference' for one bucket (see the module docstring)."""
        eps = group["eps"] if eps is None else eps
        wants_fused = group["fused"] or (
            group["fused"] is None and key[0].type == "cuda" and _fused.AUTO_ON_CUDA
        )
        if wants_fused and _fused.applies(params, grads, bufs, eps):
            return "fused"
        return "reference" if group["foreach"] is False else "foreach"

    def _ws(self, key: tuple, tensors: Any) -> Any:
        """Workspace views shaped like `tensors`, from one flat buffer reused across steps."""
        device, dtype = key
        ws_dtype = _math_dtype(dtype)
        numels = [t.numel() for t in tensors]
        total = sum(numels)
        flat = self._workspace.get(key)
        if flat is None or flat.numel() < total:
            flat = self._workspace[key] = torch.empty(total, device=device, dtype=ws_dtype)
        return [v.view_as(t) for v, t in zip(torch.split(flat[:total], numels), tensors)]

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One step of Algorithm 1/2 for every param group; returns the closure's loss, if any."""
        if closure is not None and not callable(closure):
            raise ValueError(
                "closure must be None or a callable returning the loss, got "
                f"{type(closure).__name__}"
            )
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        # Check every group before any state changes, so a bad hyperparameter or gradient leaves all
        # intact (momentum buffers made for this step are taken back). Buckets on the Triton kernel
        # (CUDA) check on the device, into one counter per device that their update kernels honour,
        # so the counters are read once, after every guarded kernel is launched.
        hypers = []
        for group_index, group in enumerate(self.param_groups):
            with _naming(f"param group {group_index}"):
                hypers.append(_hyper(group, self._with_momentum))
        created: list = []
        try:
            work, flags, device_flags = self._plan(hypers, created)
            for h, key, path, bucket, params, grads, bufs in work:
                if bucket is not None and bucket.guarded:
                    self._update(
                        h, key, path, bucket, params, grads, bufs, device_flags.get(key[0])
                    )
            for flag, group, group_index, grads in flags:
                if bool(flag):  # on CUDA: the step's one host sync
                    self._raise_non_finite(
                        group, group_index, grads
                    )  # exact: raises if a gradient is bad
        except BaseException:
            self._take_back(created)
            raise
        for h, key, path, bucket, params, grads, bufs in work:
            if bucket is None or not bucket.guarded:
                self._update(h, key, path, bucket, params, grads, bufs)
        return loss

    def _plan(self, hypers: list[_Hyper], created: list) -> tuple[list, list, dict]:
        """(work, flags, device flags): every bucket's path and buffers (new buffers listed in
        `created`), its finiteness checked on the host, or on the device for a guarded fused
        bucket (one flag per device)."""
        work: list = []
        flags: list = []
        device_flags: dict = {}
        for group_index, (group, h) in enumerate(zip(self.param_groups, hypers)):
            for key, (params, grads) in self._buckets(group, group_index).items():
                with _naming(f"param group {group_index}"):
                    _check_dtype(h, key[1])
                bufs = self._buffers(params, created)
                path = self._path(group, key, params, grads, bufs, h.eps)
                bucket = _fused.Bucket(params, grads, bufs) if path == "fused" else None
                if group["check_finite"]:
                    if bucket is None or not bucket.guarded:
                        self._check_finite(group, group_index, grads)
                    else:
                        device_flags[key[0]] = bucket.nonfinite(device_flags.get(key[0]))
                        flags.append((device_flags[key[0]], group, group_index, grads))
                work.append((h, key, path, bucket, params, grads, bufs))
        return work, flags, device_flags

    def _update(
        self,
        h: _Hyper,
        key: tuple,
        path: str,
        bucket: Any,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        bufs: list[torch.Tensor],
        flag: Any = None,
    ) -> None:
        """One bucket's step, on its path, with the group's checked hyperparameters `h`."""
        if path == "fused":
            bucket.step_(
                lr=h.lr,
                beta=h.beta or 0.0,
                weight_decay=h.weight_decay,
                rho=h.rho,
                eps=h.eps,
                flag=flag,
            )
        elif path == "reference":
            momentum = bufs if h.beta is not None else None
            _reference_step(params, grads, momentum, h.lr, h.beta, h.weight_decay, h.p, h.eps)
        else:
            direction = grads
            if h.beta is not None:
                _ema_(bufs, grads, h.beta)
                direction = bufs
            _decay_(params, h.lr, h.weight_decay)
            if h.rho == 0:
                _apply_(params, direction, h.lr)
            else:
                ws = self._ws(key, params)
                _rescale_factor_into(ws, direction, h.rho, h.eps)
                _apply_(params, direction, h.lr, ws)


def _check_fused_devices(tensors: Any) -> None:
    for t in tensors:
        if t.device.type not in ("cpu", "cuda"):
            raise ValueError(
                f"fused=True supports CPU and CUDA tensors, got one on {t.device.type}"
            )
        if t.device.type == "cuda" and not _fused.supports(t.device, torch.float32, 1.0):
            raise ValueError(
                "fused=True on CUDA needs Triton (pip install triton); use fused=False"
            )


def _reference_step(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    bufs: list[torch.Tensor] | None,
    lr: float,
    beta: float | None,
    weight_decay: float,
    p: float,
    eps: float,
) -> None:
    """Algorithms 1-2 line by line, one tensor at a time: the path the foreach path is tested
    against."""
    for i, (param, g) in enumerate(zip(params, grads)):
        direction = g
        if bufs is not None and beta is not None:
            bufs[i].mul_(beta).add_(g, alpha=1.0 - beta)  # eq. 23
            direction = bufs[i]
        if direction.dtype in _LOW_PRECISION:
            direction = direction.float()
        u = lp.rescale(direction, p, eps)  # eq. 21 / 24
        if weight_decay != 0:
            param.mul_(1.0 - lr * weight_decay)  # eq. 25
        param.add_(u, alpha=-lr)


class LPSGD(_LpOptimizer):
    """Algorithm 1: theta <- theta - lr * g / (|g| + eps)^rho_s, with p_s from eq. 19 (or a fixed
    p).

    Args:
        params: parameters or param groups (each group may set its own lr, p_max/p, total_epochs,
            eps): leaf, real floating-point tensors, each in one group once.
        lr: the step size eta >= 0: a number as torch takes it (a Python or numpy number, or a
            one-element tensor, which stays in the group as torch's optimizers keep it, for LR
            schedulers to fill).
        p_max: the schedule's starting p, in [2, inf); p anneals to 2 over `total_epochs` (eq. 19).
        total_epochs: S >= 1; call `set_epoch(s)` at the start of each epoch s = 1..S.
        eps: the stability constant of eq. 21, > 0.
        p: a fixed p in [2, inf] instead of the schedule (for experiments); excludes p_max.
        foreach: multi-tensor path or, with False, the per-tensor reference path.
        fused: True: one fused pass per bucket (`lpcheck.fused`: torch.compile on CPU, which
            compiles once per list of parameter shapes, tens of seconds for a ResNet; a Triton
            kernel on CUDA).
            None (default): foreach; fused for CUDA tensors once `lpcheck.fused.AUTO_ON_CUDA` is on
            (after the kernel's GPU validation), when Triton is available and foreach is not given.
            Buckets the fused step does not cover take the foreach path.
        check_finite: raise NonFiniteGradientError on inf/nan gradients before touching any state
            (one extra read of the gradients and, on GPU, one host sync per step).
    """

    _name = "LPSGD"
    _with_momentum = False

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        p_max: float | None = None,
        total_epochs: int | None = None,
        eps: float = 1e-8,
        *,
        p: float | None = None,
        foreach: bool | None = None,
        fused: bool | None = None,
        check_finite: bool = True,
    ) -> None:
        defaults = dict(
            lr=lr,
            p_max=p_max,
            total_epochs=total_epochs,
            eps=eps,
            p=p,
            epoch=1,
            check_finite=check_finite,
        )
        super().__init__(params, defaults, foreach, fused)


class LPSGDM(_LpOptimizer):
    """Algorithm 2: m = beta m + (1 - beta) g; theta <- (1 - lr lambda)
    theta - lr * m / (|m| + eps)^rho_s.

    The momentum buffer starts at m = 0 (Algorithm 2, line 1), so the first step uses (1 - beta) g;
    weight decay is decoupled (eq. 25). Arguments as in `LPSGD`, plus `momentum` (beta in [0, 1))
    and `weight_decay` (lambda >= 0, with lr * lambda <= 1 so that eq. 25 shrinks theta, never flips
    it).

    Every hyperparameter is checked when a group is added, when a state dict is loaded and, per
    group, at every step (an LR scheduler or a user may change it): numbers in range, and none that
    rounds to 0 or overflows in the parameters' dtype (eps = 1e-46 is 0 in float32; eps = 1e-40
    there gives eps^-rho = inf at p = inf), so a bad value is a ValueError naming it, never a NaN
    model.
    """

    _name = "LPSGDM"
    _with_momentum = True
    _REQUIRED = _LpOptimizer._REQUIRED + ("momentum", "weight_decay")
    _STATE_KEYS = ("momentum_buffer",)

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        p_max: float | None = None,
        total_epochs: int | None = None,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eps: float = 1e-8,
        *,
        p: float | None = None,
        foreach: bool | None = None,
        fused: bool | None = None,
        check_finite: bool = True,
    ) -> None:
        defaults = dict(
            lr=lr,
            p_max=p_max,
            total_epochs=total_epochs,
            momentum=momentum,
            weight_decay=weight_decay,
            eps=eps,
            p=p,
            epoch=1,
            check_finite=check_finite,
        )
        super().__init__(params, defaults, foreach, fused)
