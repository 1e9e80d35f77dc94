"""Bad input to the Python API: each case calls lpcheck with one bad argument and says what a good
answer is (a ValueError naming the argument, and for the optimizers: params, state and param groups
exactly as before the failing call). Only public names are used, so the cases run against old
checkouts too (experiments/bad_input_corpus.py --checkout)."""

from __future__ import annotations

import math

import numpy as np
import torch

from corpus import Case

AREA = "api"
CASES: list[Case] = []


def case(name, run, match, raises=(ValueError,), unchanged=None, tags=()):
    CASES.append(Case(AREA, name, run, match, raises=raises, unchanged=unchanged, tags=tags))


# ---------------------------------------------------------------------------------------------
# optimizers and core
# ---------------------------------------------------------------------------------------------


def _optim():
    from lpcheck import optim

    return optim


def _params(dtype=torch.float32, shapes=((3,), (2, 2))):
    g = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=g).to(dtype)) for s in shapes]


def _grads(params, seed=1, zero=True):
    """Gradients with an exact zero in each (the entry eq. 21 turns into 0/0 when eps is 0 in the
    dtype)."""
    g = torch.Generator().manual_seed(seed)
    for p in params:
        v = torch.randn(p.shape, generator=g).to(p.dtype)
        if zero:
            v.view(-1)[0] = 0
        p.grad = v


def _step(opt, params, steps=1):
    for t in range(steps):
        _grads(params, seed=t + 1)
        opt.step()


def _clone(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clone(v) for v in value)
    return value


def _snapshot(opt, params):
    """params' values, every group (params by identity, other values copied) and the state, by
    identity."""
    groups = [
        {k: ([id(p) for p in v] if k == "params" else _clone(v)) for k, v in g.items()}
        for g in opt.param_groups
    ]
    state = {id(p): _clone(dict(s)) for p, s in opt.state.items()}
    return [_clone(p) for p in params], groups, state


def _assert_same(a, b, where="optimizer"):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        ok = (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a, b)
        )
        assert ok, f"{where} changed: {a!r} -> {b!r}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), (
            f"{where} keys changed: {sorted(map(str, a))} -> {sorted(map(str, b))}"
        )
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), f"{where} length changed: {len(a)} -> {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and (a == b or (a != a and b != b)), (
            f"{where} changed: {a!r} -> {b!r}"
        )


def opt_case(name, make, bad, match, raises=(ValueError,), prepare=None):
    """make() -> (opt, params) in a good state; prepare(opt, params), if given, is the user's own
    change (an edited group value, a new LR scheduler); bad(opt, params) is the call that must
    refuse it; afterwards params, param_groups and state must be exactly as before that call."""
    box = {}

    def run(tmp):
        opt, params = make()
        if prepare is not None:
            prepare(opt, params)
        box.update(opt=opt, params=params, before=_snapshot(opt, params))
        bad(opt, params)

    def unchanged(tmp):
        _assert_same(box["before"], _snapshot(box["opt"], box["params"]))

    case(name, run, match, raises=raises, unchanged=unchanged)


def _lpsgd(dtype=torch.float32, steps=1, **kw):
    def make():
        params = _params(dtype)
        opt = _optim().LPSGD(params, **{"lr": 0.1, "p_max": 6.0, "total_epochs": 5, **kw})
        _step(opt, params, steps)
        return opt, params

    return make


def _lpsgdm(dtype=torch.float32, steps=1, **kw):
    def make():
        params = _params(dtype)
        opt = _optim().LPSGDM(
            params, **{"lr": 0.1, "p_max": 6.0, "total_epochs": 5, "weight_decay": 0.01, **kw}
        )
        _step(opt, params, steps)
        return opt, params

    return make


def _build_and_step(cls_name, dtype=torch.float32, **kw):
    """Construct with the given arguments and take one step: a bad value must stop the
    constructor."""

    def run(tmp):
        params = _params(dtype)
        opt = getattr(_optim(), cls_name)(params, **kw)
        _step(opt, params)
        assert all(torch.isfinite(p).all() for p in params), (
            "the step made the parameters non-finite"
        )

    return run


# --- LPSGD / LPSGDM: constructor arguments ------------------------------------------------------

BAD_NUMBERS = [
    ("True", True),
    ("a string", "0.1"),
    ("None", None),
    ("a list", [0.1]),
    ("nan", math.nan),
    ("a two-element tensor", torch.tensor([0.1, 0.2])),
    ("a two-element array", np.array([0.1, 0.2])),
    ("a complex number", 0.1j),
    ("a bool tensor", torch.tensor(True)),
]
for cls_name in ("LPSGD", "LPSGDM"):
    base = {"lr": 0.1, "p_max": 6.0, "total_epochs": 5}
    for label, value in BAD_NUMBERS + [("-1", -1.0), ("inf", math.inf)]:
        case(
            f"{cls_name} lr = {label}",
            _build_and_step(cls_name, **dict(base, lr=value)),
            r"\blr must be",
        )
    for label, value in BAD_NUMBERS + [("0", 0.0), ("-1e-8", -1e-8), ("inf", math.inf)]:
        case(
            f"{cls_name} eps = {label}",
            _build_and_step(cls_name, **dict(base, eps=value)),
            r"\beps must be",
        )
    for label, value in [b for b in BAD_NUMBERS if b[1] is not None] + [
        ("1.5", 1.5),
        ("inf", math.inf),
        ("-inf", -math.inf),
    ]:
        case(
            f"{cls_name} p_max = {label}",
            _build_and_step(cls_name, **dict(base, p_max=value)),
            r"\bp_max must be",
        )
    for label, value in [
        ("True", True),
        ("a string", "4"),
        ("a list", [4.0]),
        ("nan", math.nan),
        ("1.9", 1.9),
        ("1", 1),
        ("-inf", -math.inf),
        ("a two-element tensor", torch.tensor([3.0, 4.0])),
    ]:
        case(f"{cls_name} p = {label}", _build_and_step(cls_name, lr=0.1, p=value), r"\bp must be")
    for label, value in [
        ("0", 0),
        ("-1", -1),
        ("2.5", 2.5),
        ("nan", math.nan),
        ("inf", math.inf),
        ("True", True),
        ("a string", "5"),
        ("a list", [5]),
    ]:
        case(
            f"{cls_name} total_epochs = {label}",
            _build_and_step(cls_name, **dict(base, total_epochs=value)),
            r"\btotal_epochs must be",
        )
    case(
        f"{cls_name} p_max without total_epochs",
        _build_and_step(cls_name, lr=0.1, p_max=6.0),
        r"total_epochs",
    )
    case(f"{cls_name} neither p nor p_max", _build_and_step(cls_name, lr=0.1), r"p_max .* or p")
    case(
        f"{cls_name} both p and p_max",
        _build_and_step(cls_name, lr=0.1, p=3.0, p_max=6.0, total_epochs=5),
        r"p_max .* or p",
    )
    for arg, value in [
        ("foreach", "yes"),
        ("foreach", 1),
        ("fused", "yes"),
        ("fused", 0),
        ("check_finite", "no"),
        ("check_finite", None),
    ]:
        case(
            f"{cls_name} {arg} = {value!r}",
            _build_and_step(cls_name, **dict(base, **{arg: value})),
            rf"\b{arg} must be",
        )
    case(
        f"{cls_name} foreach and fused both True",
        _build_and_step(cls_name, **dict(base, foreach=True, fused=True)),
        r"foreach and fused",
    )
    # values that are fine as numbers but round to 0 or overflow in the parameters' dtype
    case(
        f"{cls_name} eps = 1e-46 rounds to 0 in float32 (zero gradients become NaN)",
        _build_and_step(cls_name, **dict(base, eps=1e-46)),
        r"eps = 1e-46 rounds to 0 in torch.float32",
    )
    case(
        f"{cls_name} eps = 1e-46 in bfloat16 (float32 workspace)",
        _build_and_step(cls_name, torch.bfloat16, **dict(base, eps=1e-46)),
        r"eps = 1e-46 rounds to 0",
    )
    case(
        f"{cls_name} eps = 1e-40 at p = inf: eps^-rho overflows float32",
        _build_and_step(cls_name, lr=0.1, p=math.inf, eps=1e-40),
        r"eps = 1e-40 .*float32",
    )
    case(
        f"{cls_name} eps = 1e-40 at p_max = 1e6: eps^-rho overflows float32",
        _build_and_step(cls_name, lr=0.1, p_max=1e6, total_epochs=5, eps=1e-40),
        r"eps = 1e-40 .*float32",
    )
    case(
        f"{cls_name} eps = 1e-40 in float16 at p = inf (float32 workspace)",
        _build_and_step(cls_name, torch.float16, lr=0.1, p=math.inf, eps=1e-40),
        r"eps = 1e-40 .*float32",
    )
    case(
        f"{cls_name} eps = 1e-320 at p = inf: eps^-1 overflows float64",
        _build_and_step(cls_name, torch.float64, lr=0.1, p=math.inf, eps=1e-320),
        r"eps = 1e-320 .*float64",
    )
    case(
        f"{cls_name} lr = 1e-46 rounds to 0 in float32 (no step at all)",
        _build_and_step(cls_name, **dict(base, lr=1e-46)),
        r"lr = 1e-46 rounds to 0 in torch.float32",
    )
    case(
        f"{cls_name} lr = 1e39 overflows float32",
        _build_and_step(cls_name, **dict(base, lr=1e39)),
        r"lr = 1e\+39 overflows in torch.float32",
    )

for label, value in BAD_NUMBERS + [("1", 1.0), ("-0.1", -0.1), ("inf", math.inf), ("1.5", 1.5)]:
    case(
        f"LPSGDM momentum = {label}",
        _build_and_step("LPSGDM", lr=0.1, p=4.0, momentum=value),
        r"\bmomentum\b.*must be",
    )
for label, value in BAD_NUMBERS + [("-1e-4", -1e-4), ("inf", math.inf)]:
    case(
        f"LPSGDM weight_decay = {label}",
        _build_and_step("LPSGDM", lr=0.1, p=4.0, weight_decay=value),
        r"\bweight_decay must be",
    )
case(
    "LPSGDM lr * weight_decay > 1 flips the weights' sign (eq. 25)",
    _build_and_step("LPSGDM", lr=0.5, p=4.0, weight_decay=3.0),
    r"lr \* weight_decay must be <= 1",
)
case(
    "LPSGD group with weight_decay (LPSGD has none: ignored silently)",
    lambda tmp: _optim().LPSGD([{"params": _params(), "weight_decay": 0.1}], lr=0.1, p=4.0),
    r"weight_decay",
)


# --- the params argument --------------------------------------------------------------------------


def _with_params(make_params, cls_name="LPSGDM"):
    def run(tmp):
        params = make_params()
        opt = getattr(_optim(), cls_name)(params, lr=0.1, p=4.0)
        plist = params if isinstance(params, list) else []
        _step(
            opt,
            [
                p
                for p in plist
                if isinstance(p, torch.Tensor) and p.is_floating_point() and p.is_leaf
            ],
        )

    return run


for cls_name in ("LPSGD", "LPSGDM"):
    case(
        f"{cls_name} params = one tensor", _with_params(lambda: _params()[0], cls_name), r"\bparams"
    )
    case(f"{cls_name} params = a set", _with_params(lambda: set(_params()), cls_name), r"\bparams")
    case(
        f"{cls_name} params = []",
        _with_params(lambda: [], cls_name),
        r"\bparams\b|empty parameter list",
    )
    case(f"{cls_name} params = None", _with_params(lambda: None, cls_name), r"\bparams")
    case(f"{cls_name} params = 3", _with_params(lambda: 3, cls_name), r"\bparams")
    case(
        f"{cls_name} params hold an int",
        _with_params(lambda: [_params()[0], 3], cls_name),
        r"\bparams",
    )
    case(
        f"{cls_name} integer-dtype parameter",
        _with_params(lambda: [torch.zeros(3, dtype=torch.int64)], cls_name),
        r"\bparams.*floating",
    )
    case(
        f"{cls_name} complex parameter",
        _with_params(lambda: [torch.nn.Parameter(torch.zeros(3, dtype=torch.complex64))], cls_name),
        r"\bparams.*complex|\bparams.*real",
    )
    case(
        f"{cls_name} non-leaf parameter",
        _with_params(lambda: [_params()[0] * 2], cls_name),
        r"non-leaf|not a leaf",
    )
    case(
        f"{cls_name} one parameter twice in a group (stepped twice)",
        _with_params(lambda: (lambda w: [w, w])(_params()[0]), cls_name),
        r"\bparams",
    )
    case(
        f"{cls_name} one parameter in two groups",
        _with_params(
            lambda: (lambda w: [{"params": [w]}, {"params": [w]}])(_params()[0]), cls_name
        ),
        r"\bparams\b|more than one parameter group",
    )
    case(
        f"{cls_name} a group without params",
        _with_params(lambda: [{"params": _params()}, {"lr": 0.1}], cls_name),
        r"params",
    )
    case(
        f"{cls_name} params = one group dict (not in a list)",
        _with_params(lambda: {"params": _params()}, cls_name),
        r"\bparams",
    )


# --- add_param_group: checked before it is added --------------------------------------------------


def _add(group_factory):
    def bad(opt, params):
        opt.add_param_group(group_factory(params))

    return bad


ADD = [
    ("lr = -1", lambda ps: {"params": _params(), "lr": -1.0}, r"\blr must be"),
    ("lr = nan", lambda ps: {"params": _params(), "lr": math.nan}, r"\blr must be"),
    ("lr = a string", lambda ps: {"params": _params(), "lr": "0.1"}, r"\blr must be"),
    ("eps = 0", lambda ps: {"params": _params(), "eps": 0.0}, r"\beps must be"),
    (
        "eps = 1e-46 for float32 parameters",
        lambda ps: {"params": _params(), "eps": 1e-46},
        r"eps = 1e-46 rounds to 0",
    ),
    (
        "lr = 1e-46 for float32 parameters",
        lambda ps: {"params": _params(), "lr": 1e-46},
        r"lr = 1e-46 rounds to 0",
    ),
    ("p = 1", lambda ps: {"params": _params(), "p": 1.0}, r"\bp must be"),
    (
        "p and p_max both",
        lambda ps: {"params": _params(), "p": 3.0, "p_max": 6.0},
        r"p_max .* or p",
    ),
    ("p_max = 1.5", lambda ps: {"params": _params(), "p_max": 1.5}, r"\bp_max must be"),
    (
        "total_epochs = 0",
        lambda ps: {"params": _params(), "total_epochs": 0},
        r"\btotal_epochs must be",
    ),
    (
        "a parameter of group 0 again",
        lambda ps: {"params": [ps[0]]},
        r"\bparams\b|more than one parameter group",
    ),
    ("one parameter twice", lambda ps: (lambda w: {"params": [w, w]})(_params()[0]), r"\bparams"),
    ("a non-leaf parameter", lambda ps: {"params": [_params()[0] * 2]}, r"non-leaf|not a leaf"),
    (
        "an integer parameter",
        lambda ps: {"params": [torch.zeros(2, dtype=torch.int32)]},
        r"\bparams.*floating",
    ),
    ("params = one int", lambda ps: {"params": 5}, r"\bparams"),
    ("no params key", lambda ps: {"lr": 0.1}, r"params"),
    ("not a dict", lambda ps: [_params()[0]], r"param_group"),
    ("foreach = 'yes'", lambda ps: {"params": _params(), "foreach": "yes"}, r"\bforeach must be"),
    ("fused = 'yes'", lambda ps: {"params": _params(), "fused": "yes"}, r"\bfused must be"),
    (
        "check_finite = None",
        lambda ps: {"params": _params(), "check_finite": None},
        r"\bcheck_finite must be",
    ),
]
for label, group, match in ADD:
    opt_case(f"LPSGD.add_param_group {label}", _lpsgd(), _add(group), match)
for label, group, match in ADD + [
    ("momentum = 1", lambda ps: {"params": _params(), "momentum": 1.0}, r"\bmomentum\b.*must be"),
    (
        "weight_decay = -1",
        lambda ps: {"params": _params(), "weight_decay": -1.0},
        r"\bweight_decay must be",
    ),
    (
        "lr * weight_decay = 5",
        lambda ps: {"params": _params(), "lr": 1.0, "weight_decay": 5.0},
        r"lr \* weight_decay",
    ),
]:
    opt_case(f"LPSGDM.add_param_group {label}", _lpsgdm(), _add(group), match)


def _at_epoch_3(make):
    def made():
        opt, params = make()
        opt.set_epoch(3)
        return opt, params

    return made


opt_case(
    "LPSGDM.add_param_group fixed-p group whose total_epochs the current epoch passed",
    _at_epoch_3(_lpsgdm()),
    _add(lambda ps: {"params": _params(), "p": 3.0, "total_epochs": 2}),
    r"\bepoch must be",
)


# --- set_epoch ------------------------------------------------------------------------------------

for label, value in [
    ("0", 0),
    ("6 > total_epochs", 6),
    ("-1", -1),
    ("2.5", 2.5),
    ("True", True),
    ("a string", "2"),
    ("None", None),
    ("nan", math.nan),
    ("a two-element tensor", torch.tensor([1, 2])),
]:
    opt_case(
        f"LPSGDM.set_epoch({label})",
        _lpsgdm(),
        lambda opt, ps, v=value: opt.set_epoch(v),
        r"\bepoch must be",
    )
opt_case(
    "LPSGD.set_epoch(6) past a fixed-p group's total_epochs",
    lambda: (lambda ps: (_optim().LPSGD(ps, lr=0.1, p=3.0, total_epochs=5), ps))(_params()),
    lambda opt, ps: opt.set_epoch(6),
    r"\bepoch must be",
)


# --- step: hyperparameters changed after construction (an LR scheduler, a user's edit) ------------


def _edit(key, value):
    def prepare(opt, params):
        opt.param_groups[-1][key] = value

    return prepare


def _step_again(opt, params):
    _grads(params, seed=7)
    opt.step()


PATHS = [("foreach", {}), ("per-tensor", {"foreach": False})]
EDITS = [
    ("lr = -1", "lr", -1.0, r"\blr must be"),
    ("lr = nan", "lr", math.nan, r"\blr must be"),
    ("lr = inf", "lr", math.inf, r"\blr must be"),
    ("lr = a string", "lr", "0.1", r"\blr must be"),
    ("lr = a two-element tensor", "lr", torch.tensor([0.1, 0.2]), r"\blr must be"),
    ("lr = 1e-46 (0 in float32)", "lr", 1e-46, r"lr = 1e-46 rounds to 0"),
    ("eps = 0", "eps", 0.0, r"\beps must be"),
    ("eps = -1", "eps", -1.0, r"\beps must be"),
    (
        "eps = 1e-46 (0 in float32: zero gradients become NaN)",
        "eps",
        1e-46,
        r"eps = 1e-46 rounds to 0",
    ),
    ("eps = nan", "eps", math.nan, r"\beps must be"),
    ("p = 1.5", "p", 1.5, r"\bp must be"),
    ("p = None", "p", None, r"\bp must be"),
]
M_EDITS = [
    ("momentum = 1", "momentum", 1.0, r"\bmomentum\b.*must be"),
    ("momentum = -0.5", "momentum", -0.5, r"\bmomentum\b.*must be"),
    ("weight_decay = -1", "weight_decay", -1.0, r"\bweight_decay must be"),
    ("weight_decay = 50 (lr * weight_decay = 5)", "weight_decay", 50.0, r"lr \* weight_decay"),
]
for path, kw in PATHS:
    for label, key, value, match in EDITS:
        opt_case(
            f"LPSGD.step ({path}) after group {label}",
            _lpsgd(**kw),
            _step_again,
            match,
            prepare=_edit(key, value),
        )
    for label, key, value, match in EDITS + M_EDITS:
        opt_case(
            f"LPSGDM.step ({path}) after group {label}",
            _lpsgdm(**kw),
            _step_again,
            match,
            prepare=_edit(key, value),
        )
opt_case(
    "LPSGDM.step after eps = 1e-40 at p = inf (eps^-rho = inf in float32)",
    lambda: (lambda ps: (_optim().LPSGDM(ps, lr=0.1, p=math.inf), ps))(_params()),
    _step_again,
    r"eps = 1e-40",
    prepare=_edit("eps", 1e-40),
)
opt_case(
    "LPSGDM.step bfloat16 after eps = 1e-46",
    _lpsgdm(torch.bfloat16),
    _step_again,
    r"eps = 1e-46 rounds to 0",
    prepare=_edit("eps", 1e-46),
)
opt_case(
    "LPSGDM.step after an LR scheduler sets lr * weight_decay > 1",
    _lpsgdm(),
    _step_again,
    r"lr \* weight_decay",
    prepare=lambda opt, ps: torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 2000.0),
)
opt_case("LPSGDM.step(closure=5)", _lpsgdm(), lambda opt, ps: opt.step(5), r"\bclosure")
opt_case("LPSGD.step(closure='loss')", _lpsgd(), lambda opt, ps: opt.step("loss"), r"\bclosure")


def _two_groups_m():
    params = _params()
    return _optim().LPSGDM(
        [{"params": [params[0]]}, {"params": [params[1]]}], lr=0.1, p=4.0
    ), params


def _nan_in_group_1(opt, params):
    _grads(params)
    params[1].grad[0] = math.nan
    opt.step()


# group 0 passes its checks first: its new zero momentum buffer must not stay behind
opt_case(
    "LPSGDM.step non-finite gradient in group 1 leaves no new momentum buffer in group 0",
    _two_groups_m,
    _nan_in_group_1,
    r"non-finite gradient",
    raises=(FloatingPointError,),
)


# --- fused=True (torch.compile on CPU): the same checks before the fused call ---------------------


def _fused_m(**kw):
    def make():
        params = _params(shapes=((3,),))
        return _optim().LPSGDM(params, **{"lr": 0.1, "p": 4.0, "fused": True, **kw}), params

    return make


opt_case(
    "LPSGDM fused step after eps = 1e-46",
    _fused_m(),
    _step_again,
    r"eps = 1e-46 rounds to 0",
    prepare=_edit("eps", 1e-46),
)
opt_case(
    "LPSGDM fused step after lr = 1e-46 (no step taken)",
    _fused_m(),
    _step_again,
    r"lr = 1e-46 rounds to 0",
    prepare=_edit("lr", 1e-46),
)
opt_case(
    "LPSGDM fused step after momentum = 1",
    _fused_m(),
    _step_again,
    r"\bmomentum\b.*must be",
    prepare=_edit("momentum", 1.0),
)
case(
    "LPSGDM fused eps = 1e-40 at p = inf",
    _build_and_step("LPSGDM", lr=0.1, p=math.inf, eps=1e-40, fused=True),
    r"eps = 1e-40",
)


# --- load_state_dict: checked against this optimizer's parameters before anything changes ---------


def _load(edit, source=None):
    """Take a good state dict (of this optimizer, or of `source()`), edit it, and load it."""

    def bad(opt, params):
        sd = (source() if source else opt).state_dict()
        sd = {
            "state": {
                k: dict(v) for k, v in sd["state"].items()
            },  # (state_dict shares the state's dicts)
            "param_groups": [dict(g) for g in sd["param_groups"]],
        }
        edit(sd)
        opt.load_state_dict(sd)

    return bad


def _set_buf(value):
    def edit(sd):
        sd["state"][0]["momentum_buffer"] = value(sd["state"][0]["momentum_buffer"])

    return edit


def _set_group(key, value):
    def edit(sd):
        sd["param_groups"][0][key] = value

    return edit


def _nan_at_0(b):
    b = b.clone()
    b.view(-1)[0] = math.nan
    return b


LOAD_M = [
    ("a NaN momentum buffer (NaNs the model)", _set_buf(_nan_at_0), r"momentum_buffer.*finite"),
    (
        "an inf momentum buffer",
        _set_buf(lambda b: torch.full_like(b, math.inf)),
        r"momentum_buffer.*finite",
    ),
    (
        "a float64 buffer beyond float32's range",
        _set_buf(lambda b: torch.full(b.shape, 1e300, dtype=torch.float64)),
        r"momentum_buffer.*finite",
    ),
    (
        "a momentum buffer of the wrong shape",
        _set_buf(lambda b: torch.zeros(7)),
        r"momentum_buffer.*shape",
    ),
    (
        "a complex momentum buffer",
        _set_buf(lambda b: torch.zeros(b.shape, dtype=torch.complex64)),
        r"momentum_buffer",
    ),
    ("a momentum buffer that is None", _set_buf(lambda b: None), r"momentum_buffer"),
    ("a momentum buffer that is a list", _set_buf(lambda b: b.tolist()), r"momentum_buffer"),
    (
        "Adam's exp_avg in the state",
        lambda sd: sd["state"][0].update(exp_avg=torch.zeros(3)),
        r"exp_avg",
    ),
    ("state for a parameter id no group lists", lambda sd: sd["state"].update({99: {}}), r"\b99\b"),
    ("momentum = 1", _set_group("momentum", 1.0), r"\bmomentum\b.*must be"),
    ("weight_decay = -1", _set_group("weight_decay", -1.0), r"\bweight_decay must be"),
]
LOAD = [
    ("lr = -1", _set_group("lr", -1.0), r"\blr must be"),
    ("lr = a two-element tensor", _set_group("lr", torch.tensor([0.1, 0.2])), r"\blr must be"),
    ("eps = 0", _set_group("eps", 0.0), r"\beps must be"),
    ("eps = 1e-46 for float32 parameters", _set_group("eps", 1e-46), r"eps = 1e-46 rounds to 0"),
    ("p = 1.5", _set_group("p", 1.5), r"\bp must be"),
    ("p not eq. 19's p_s at its epoch", _set_group("p", 3.0), r"\bp = 3.0 .*eq. 19"),
    ("epoch = 0", _set_group("epoch", 0), r"\bepoch must be"),
    ("epoch = 9 > total_epochs = 5", _set_group("epoch", 9), r"\bepoch must be"),
    ("total_epochs = 0", _set_group("total_epochs", 0), r"\btotal_epochs must be"),
    ("p_max = 1", _set_group("p_max", 1.0), r"\bp_max must be"),
    ("fused = 'yes'", _set_group("fused", "yes"), r"\bfused must be"),
    ("foreach = 'yes'", _set_group("foreach", "yes"), r"\bforeach must be"),
    (
        "no eps (not this optimizer's state dict)",
        lambda sd: sd["param_groups"][0].pop("eps"),
        r"\beps\b",
    ),
    (
        "one group too many",
        lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0], params=[7])),
        r"state.dict.*param(eter)? groups",
    ),
    (
        "a group with one parameter too few",
        lambda sd: sd["param_groups"][0].update(params=[0]),
        r"\bparams lists|size of optimizer's group",
    ),
    (
        "the same parameter id twice",
        lambda sd: sd["param_groups"][0].update(params=[0, 0]),
        r"\bparams",
    ),
    (
        "params that are not ids",
        lambda sd: sd["param_groups"][0].update(params=["a", "b"]),
        r"\bparams",
    ),
    ("param_groups not a list", lambda sd: sd.update(param_groups=5), r"param_groups"),
    ("no state key", lambda sd: sd.pop("state"), r"\bstate"),
]
for label, edit, match in LOAD + LOAD_M:
    opt_case(f"LPSGDM.load_state_dict {label}", _lpsgdm(), _load(edit), match)
for label, edit, match in LOAD:
    opt_case(f"LPSGD.load_state_dict {label}", _lpsgd(), _load(edit), match)
opt_case(
    "LPSGDM.load_state_dict not a dict",
    _lpsgdm(),
    lambda opt, ps: opt.load_state_dict([1, 2]),
    r"state_dict",
)
opt_case(
    "LPSGD.load_state_dict of LPSGDM (its weight decay dropped silently)",
    _lpsgd(),
    _load(lambda sd: None, source=lambda: _lpsgdm()()[0]),
    r"LPSGDM|weight_decay|momentum",
)
opt_case(
    "LPSGDM.load_state_dict of LPSGD (no momentum)",
    _lpsgdm(),
    _load(lambda sd: None, source=lambda: _lpsgd()()[0]),
    r"\bmomentum",
)


def _sgd():
    params = _params()
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    _step(opt, params)
    return opt


def _foreach_twin_of_fused():
    params = _params(shapes=((3,),))
    opt = _optim().LPSGDM(params, lr=0.1, p=4.0)
    _step(opt, params)
    return opt


opt_case(
    "LPSGDM.load_state_dict of torch SGD",
    _lpsgdm(),
    _load(lambda sd: None, source=_sgd),
    r"\beps\b|LPSGDM",
)
opt_case(
    "LPSGDM (fused) load_state_dict a NaN momentum buffer",
    _fused_m(),
    _load(_set_buf(_nan_at_0), source=_foreach_twin_of_fused),
    r"momentum_buffer.*finite",
)
opt_case(
    "LPSGDM (per-tensor) load_state_dict a NaN momentum buffer",
    _lpsgdm(foreach=False),
    _load(_set_buf(_nan_at_0)),
    r"momentum_buffer.*finite",
)


# --- Lion (lpcheck.baselines) ---------------------------------------------------------------------


def _lion(**kw):
    def make():
        from lpcheck.baselines import Lion

        params = _params()
        opt = Lion(params, **{"lr": 1e-3, **kw})
        _step(opt, params)
        return opt, params

    return make


def _lion_build(**kw):
    def run(tmp):
        make = _lion(**kw)
        opt, params = make()
        assert all(torch.isfinite(p).all() for p in params)

    return run


for label, value in BAD_NUMBERS + [("-1", -1.0), ("inf", math.inf)]:
    case(f"Lion lr = {label}", _lion_build(lr=value), r"\blr must be")
for label, value in BAD_NUMBERS + [("-0.1", -0.1), ("inf", math.inf)]:
    case(f"Lion weight_decay = {label}", _lion_build(weight_decay=value), r"\bweight_decay must be")
for label, value in [
    ("(0.9, 1.0)", (0.9, 1.0)),
    ("(0.9,)", (0.9,)),
    ("'ab'", "ab"),
    ("(nan, 0.9)", (math.nan, 0.9)),
    ("(True, 0.9)", (True, 0.9)),
    ("None", None),
    ("0.9", 0.9),
    ("(-0.1, 0.9)", (-0.1, 0.9)),
    ("(0.9, 0.99, 0.999)", (0.9, 0.99, 0.999)),
    ("('0.9', 0.99)", ("0.9", 0.99)),
]:
    case(f"Lion betas = {label}", _lion_build(betas=value), r"\bbetas")
case("Lion lr * weight_decay > 1", _lion_build(lr=0.5, weight_decay=4.0), r"lr \* weight_decay")
case("Lion lr = 1e-46 rounds to 0 in float32", _lion_build(lr=1e-46), r"lr = 1e-46 rounds to 0")
for label, group, match in [
    ("lr = -1", lambda ps: {"params": _params(), "lr": -1.0}, r"\blr must be"),
    ("betas = (1.5, 0.9)", lambda ps: {"params": _params(), "betas": (1.5, 0.9)}, r"\bbetas"),
    (
        "weight_decay = nan",
        lambda ps: {"params": _params(), "weight_decay": math.nan},
        r"\bweight_decay must be",
    ),
    (
        "a parameter of group 0 again",
        lambda ps: {"params": [ps[0]]},
        r"\bparams\b|more than one parameter group",
    ),
    (
        "an integer parameter",
        lambda ps: {"params": [torch.zeros(2, dtype=torch.int64)]},
        r"\bparams",
    ),
]:
    opt_case(f"Lion.add_param_group {label}", _lion(), _add(group), match)
for label, key, value, match in [
    ("lr = -1", "lr", -1.0, r"\blr must be"),
    ("betas = (1.5, 0.9)", "betas", (1.5, 0.9), r"\bbetas"),
    ("weight_decay = -1", "weight_decay", -1.0, r"\bweight_decay must be"),
    ("lr = 1e-46", "lr", 1e-46, r"lr = 1e-46 rounds to 0"),
]:
    opt_case(
        f"Lion.step after group {label}", _lion(), _step_again, match, prepare=_edit(key, value)
    )
for label, edit, match in [
    (
        "a NaN exp_avg",
        lambda sd: sd["state"][0].update(exp_avg=_nan_at_0(sd["state"][0]["exp_avg"])),
        r"exp_avg.*finite",
    ),
    (
        "an exp_avg of the wrong shape",
        lambda sd: sd["state"][0].update(exp_avg=torch.zeros(9)),
        r"exp_avg.*shape",
    ),
    ("lr = -1", _set_group("lr", -1.0), r"\blr must be"),
    ("betas = (1.0, 0.9)", _set_group("betas", (1.0, 0.9)), r"\bbetas"),
    ("no betas", lambda sd: sd["param_groups"][0].pop("betas"), r"\bbetas"),
    (
        "one group too many",
        lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0], params=[7])),
        r"state.dict.*param(eter)? groups",
    ),
]:
    opt_case(f"Lion.load_state_dict {label}", _lion(), _load(edit), match)


def _Lion(*args, **kw):
    from lpcheck.baselines import Lion

    return Lion(*args, **kw)


case("Lion params = one tensor", lambda tmp: _Lion(_params()[0]), r"\bparams")
case("Lion non-leaf parameter", lambda tmp: _Lion([_params()[0] * 2]), r"non-leaf|not a leaf")
case("Lion one parameter twice", lambda tmp: (lambda w: _Lion([w, w]))(_params()[0]), r"\bparams")


# --- lpcheck.lp -----------------------------------------------------------------------------------


def _lp():
    from lpcheck import lp

    return lp


X = np.array([3.0, -4.0, 0.0])
for label, value in [
    ("True", True),
    ("a string", "2"),
    ("None", None),
    ("a list", [2.0]),
    ("a two-element tensor", torch.tensor([2.0, 3.0])),
    ("nan", math.nan),
    ("0.5", 0.5),
]:
    case(
        f"lp.dual_exponent(p = {label})",
        lambda tmp, v=value: _lp().dual_exponent(v),
        r"\bp must be",
    )
    case(f"lp.lp_norm(p = {label})", lambda tmp, v=value: _lp().lp_norm(X, v), r"\bp must be")
for label, value in [
    ("True", True),
    ("a string", "4"),
    ("None", None),
    ("nan", math.nan),
    ("1.9", 1.9),
    ("a two-element array", np.array([3.0, 4.0])),
]:
    case(f"lp.rho(p = {label})", lambda tmp, v=value: _lp().rho(v), r"\bp must be")
    case(f"lp.rescale(p = {label})", lambda tmp, v=value: _lp().rescale(X, v, 1e-8), r"\bp must be")
for label, value in [("1", 1.0), ("0.5", 0.5), ("nan", math.nan), ("a string", "3")]:
    case(
        f"lp.steepest_descent(p = {label})",
        lambda tmp, v=value: _lp().steepest_descent(X, v),
        r"\bp must be",
    )
for label, value in [
    ("-1", -1.0),
    ("inf", math.inf),
    ("nan", math.nan),
    ("True", True),
    ("a string", "1"),
    ("a two-element tensor", torch.tensor([1.0, 2.0])),
]:
    case(
        f"lp.steepest_descent(lr = {label})",
        lambda tmp, v=value: _lp().steepest_descent(X, 3.0, v),
        r"\blr must be",
    )
case(
    "lp.steepest_descent lr = 1e-46 is 0 for a float32 tensor",
    lambda tmp: _lp().steepest_descent(torch.tensor([3.0, -4.0]), 3.0, 1e-46),
    r"lr = 1e-46 rounds to 0",
)
for label, value in [
    ("0", 0.0),
    ("-1e-8", -1e-8),
    ("nan", math.nan),
    ("inf", math.inf),
    ("True", True),
    ("a string", "1e-8"),
    ("None", None),
]:
    case(
        f"lp.rescale(eps = {label})",
        lambda tmp, v=value: _lp().rescale(X, 4.0, v),
        r"\beps must be",
    )
case(
    "lp.rescale eps = 1e-46 for float32 numpy (NaN at zeros)",
    lambda tmp: _lp().rescale(np.array([0.0, 1.0], dtype=np.float32), 4.0, 1e-46),
    r"eps = 1e-46 rounds to 0",
)
case(
    "lp.rescale eps = 1e-46 for a float32 tensor",
    lambda tmp: _lp().rescale(torch.tensor([0.0, 1.0]), 4.0, 1e-46),
    r"eps = 1e-46 rounds to 0",
)
case(
    "lp.rescale default eps = 1e-8 is 0 in float16 (NaN at zeros)",
    lambda tmp: _lp().rescale(torch.tensor([0.0, 1.0], dtype=torch.float16), 4.0, 1e-8),
    r"eps = 1e-08 rounds to 0",
)
case(
    "lp.rescale eps = 1e-8 for float16 numpy",
    lambda tmp: _lp().rescale(np.array([0.0, 1.0], dtype=np.float16), 4.0, 1e-8),
    r"eps = 1e-08 rounds to 0",
)
case(
    "lp.rescale eps = 1e300 overflows float32 (every u = 0)",
    lambda tmp: _lp().rescale(np.array([2.0, 1.0], dtype=np.float32), 4.0, 1e300),
    r"eps = 1e\+300 overflows",
)
for fn, call in [
    ("lp_norm", lambda a, **k: _lp().lp_norm(a, 2.0, **k)),
    ("steepest_descent", lambda a, **k: _lp().steepest_descent(a, 3.0, **k)),
]:
    for kind, arr in [("numpy", np.ones((2, 3))), ("torch", torch.ones(2, 3))]:
        for label, axis in [
            ("2", 2),
            ("-3", -3),
            ("1.5", 1.5),
            ("True", True),
            ("a string", "0"),
            ("[0]", [0]),
        ]:
            case(
                f"lp.{fn} axis = {label} ({kind} 2-d)",
                lambda tmp, c=call, a=arr, x=axis: c(a, axis=x),
                r"\baxis",
            )
    case(
        f"lp.{fn} axis = 0 of a 0-d input", lambda tmp, c=call: c(np.array(1.0), axis=0), r"\baxis"
    )
for label, value, name in [
    ("an object array", np.array([1, "a"], dtype=object), "x"),
    ("a string", "abc", "x"),
    ("a ragged list", [[1.0, 2.0], [3.0]], "x"),
    ("None", None, "x"),
    ("complex", np.array([1j]), "x"),
    ("a NaN tensor", torch.tensor([1.0, math.nan]), "x"),
    ("an inf array", np.array([math.inf]), "x"),
]:
    case(
        f"lp.lp_norm(x = {label})", lambda tmp, v=value: _lp().lp_norm(v, 2.0), rf"\b{name} must be"
    )
    case(
        f"lp.rescale(g = {label})", lambda tmp, v=value: _lp().rescale(v, 4.0, 1e-8), r"\bg must be"
    )
    case(
        f"lp.steepest_descent(g = {label})",
        lambda tmp, v=value: _lp().steepest_descent(v, 4.0),
        r"\bg must be",
    )
case(
    "lp.lp_norm check_finite = 'no'",
    lambda tmp: _lp().lp_norm(X, 2.0, check_finite="no"),
    r"\bcheck_finite must be",
)
case(
    "lp.rescale check_finite = None",
    lambda tmp: _lp().rescale(X, 4.0, 1e-8, check_finite=None),
    r"\bcheck_finite must be",
)


# --- lpcheck.schedule -----------------------------------------------------------------------------


def _schedule():
    from lpcheck import schedule

    return schedule


for label, value in [
    ("0", 0),
    ("11 > total_epochs", 11),
    ("1.5", 1.5),
    ("True", True),
    ("a string", "1"),
    ("None", None),
    ("nan", math.nan),
    ("inf", math.inf),
]:
    case(
        f"schedule.cosine_p(epoch = {label})",
        lambda tmp, v=value: _schedule().cosine_p(v, 10, 6.0),
        r"\bepoch must be",
    )
for label, value in [
    ("0", 0),
    ("2.5", 2.5),
    ("True", True),
    ("a string", "10"),
    ("None", None),
    ("inf", math.inf),
    ("a two-element tensor", torch.tensor([5, 6])),
]:
    case(
        f"schedule.cosine_p(total_epochs = {label})",
        lambda tmp, v=value: _schedule().cosine_p(1, v, 6.0),
        r"\btotal_epochs must be",
    )
for label, value in [
    ("1.9", 1.9),
    ("inf", math.inf),
    ("nan", math.nan),
    ("True", True),
    ("a string", "6"),
    ("None", None),
]:
    case(
        f"schedule.cosine_p(p_max = {label})",
        lambda tmp, v=value: _schedule().cosine_p(1, 10, v),
        r"\bp_max must be",
    )


# --- lpcheck.bounds -------------------------------------------------------------------------------


def _bounds():
    from lpcheck import bounds

    return bounds


GOOD = dict(c1=0.5, c2=1.0, c3=2.0, L=3.0, delta=4.0, T=100, eta=0.1)
BAD_POSITIVE = [
    ("nan", math.nan),
    ("-1", -1.0),
    ("inf", math.inf),
    ("True", True),
    ("a string", "1"),
    ("None", None),
    ("a two-element array", np.array([1.0, 2.0])),
]
_i = 0
for fn, names in [
    ("step_cap", ("c1", "L", "c3")),
    ("theorem1_rhs", ("eta", "c1", "c2", "L", "delta", "T")),
    ("theorem1_step", ("c1", "c2", "c3", "L", "delta", "T")),
    ("theorem1_bound", ("c1", "c2", "c3", "L", "delta", "T")),
    ("rate_constant", ("c1", "c2", "L", "delta")),
    ("theorem2_bound", ("c1", "c2", "c3", "L", "delta", "T")),
]:
    for name in names:  # each argument once, the bad values in turn
        label, value = BAD_POSITIVE[_i % len(BAD_POSITIVE)]
        _i += 1
        args = dict({n: GOOD[n] for n in names}, **{name: value})
        case(
            f"bounds.{fn}({name} = {label})",
            lambda tmp, f=fn, a=args: getattr(_bounds(), f)(**a),
            rf"\b{name} must be",
        )
case(
    "bounds.theorem1_rhs(T = 0.5)",
    lambda tmp: _bounds().theorem1_rhs(0.1, 1, 1, 1, 1, 0.5),
    r"\bT must be",
)
case("bounds.step_cap(c1 = 0)", lambda tmp: _bounds().step_cap(0, 1, 1), r"\bc1 must be")
case(
    "schedule.check_epoch(11, 10)", lambda tmp: _schedule().check_epoch(11, 10), r"\bepoch must be"
)
case(
    "schedule.check_total_epochs(0)",
    lambda tmp: _schedule().check_total_epochs(0),
    r"\btotal_epochs must be",
)
case("schedule.check_p_max(1)", lambda tmp: _schedule().check_p_max(1), r"\bp_max must be")
case(
    "bounds.step_cap L c3 underflow (a division by 0.0)",
    lambda tmp: _bounds().step_cap(1.0, 1e-200, 1e-200),
    r"step_cap\(.*L=1e-200",
)
case(
    "bounds.theorem1_rhs eta c1 T underflow",
    lambda tmp: _bounds().theorem1_rhs(1e-200, 1e-200, 1, 1, 1, 1),
    r"theorem1_rhs\(.*eta=1e-200",
)
case(
    "bounds.theorem1_step L c2 T underflow",
    lambda tmp: _bounds().theorem1_step(1.0, 1e-200, 1.0, 1e-200, 1.0, 1),
    r"theorem1_step\(",
)
case(
    "bounds.rate_constant overflows to inf",
    lambda tmp: _bounds().rate_constant(1e-300, 1e300, 1e300, 1e300),
    r"rate_constant\(",
)


# --- lpcheck.grads --------------------------------------------------------------------------------


def _g():
    from lpcheck import grads

    return grads


case("grads.flatten([])", lambda tmp: _g().flatten([]), r"\btensors\b|at least one tensor")
case("grads.flatten(5)", lambda tmp: _g().flatten(5), r"\btensors")
case("grads.flatten of numbers", lambda tmp: _g().flatten([1.0, 2.0]), r"\btensors")
case(
    "grads.flatten across devices",
    lambda tmp: _g().flatten([torch.ones(2), torch.ones(2, device="meta")]),
    r"\btensors.*device",
)
case(
    "grads.unflatten of a numpy array",
    lambda tmp: _g().unflatten(np.zeros(5), [torch.ones(5)]),
    r"\bflat",
)
case(
    "grads.unflatten 2-d flat",
    lambda tmp: _g().unflatten(torch.zeros(1, 5), [torch.ones(5)]),
    r"\bflat",
)
case(
    "grads.unflatten wrong length",
    lambda tmp: _g().unflatten(torch.zeros(4), [torch.ones(5)]),
    r"\bflat",
)
case(
    "grads.unflatten like of numbers",
    lambda tmp: _g().unflatten(torch.zeros(2), [1.0, 2.0]),
    r"\blike",
)
case(
    "grads.set_flat_params wrong length",
    lambda tmp: _g().set_flat_params(_params(), torch.zeros(3)),
    r"\bflat",
)
case(
    "grads.set_flat_params numpy flat",
    lambda tmp: _g().set_flat_params(_params(), np.zeros(7)),
    r"\bflat",
)
case(
    "grads.flat_grad of a non-scalar loss",
    lambda tmp: (lambda ps: _g().flat_grad(ps[0] * 2, ps))(_params()),
    r"\bloss",
)
case(
    "grads.flat_grad of a loss without a graph",
    lambda tmp: _g().flat_grad(torch.tensor(1.0), _params()),
    r"\bloss",
)
case("grads.flat_grad of a float loss", lambda tmp: _g().flat_grad(1.0, _params()), r"\bloss")
case(
    "grads.flat_grad with no params",
    lambda tmp: (lambda ps: _g().flat_grad((ps[0] ** 2).sum(), []))(_params()),
    r"\bparams",
)
case(
    "grads.flat_state of Adam's step (one number per parameter: misaligned)",
    lambda tmp: (
        lambda ps: (lambda o: (_step(o, ps), _g().flat_state(o, ps, "step")))(torch.optim.Adam(ps))
    )(_params()),
    r"\bkey",
)
case(
    "grads.flat_state of a non-optimizer",
    lambda tmp: _g().flat_state(object(), _params(), "momentum_buffer"),
    r"\boptimizer",
)
case(
    "grads.flat_state key = 3",
    lambda tmp: (lambda ps: _g().flat_state(torch.optim.SGD(ps, lr=0.1), ps, 3))(_params()),
    r"\bkey",
)
case("grads.parameters(5)", lambda tmp: _g().parameters(5), r"model_or_params|parameters")
case(
    "grads.parameters of numbers",
    lambda tmp: _g().parameters([1.0, 2.0]),
    r"parameters must be tensors",
)


# --- lpcheck.curvature ----------------------------------------------------------------------------


def _c():
    from lpcheck import curvature

    return curvature


def _sym(n=4):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g, dtype=torch.float64)
    return a + a.T


def _hessian():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2)).double()
    batches = [(torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64))]
    return _c().HessianOperator(
        model, lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), batches, mode="eval"
    )


for label, value in [
    ("0", 0),
    ("2.5", 2.5),
    ("nan", math.nan),
    ("True", True),
    ("a string", "3"),
    ("None", None),
]:
    case(
        f"curvature.lanczos(steps = {label})",
        lambda tmp, v=value: _c().lanczos(_c().DenseOperator(_sym()), v),
        r"\bsteps must be",
    )
for label, value in [("0", 0), ("2.5", 2.5), ("True", True), ("5 > dim 4", 5), ("a string", "1")]:
    case(
        f"curvature.top_eigenvalues(k = {label})",
        lambda tmp, v=value: _c().top_eigenvalues(_c().DenseOperator(_sym()), v),
        r"\bk must be",
    )
case(
    "curvature.top_eigenvalues(steps = 0) silently took the default",
    lambda tmp: _c().top_eigenvalues(_c().DenseOperator(_sym()), 1, steps=0),
    r"\bsteps must be",
)
case(
    "curvature.top_eigenvalues(k = 3, steps = 2): fewer than k values",
    lambda tmp: _c().top_eigenvalues(_c().DenseOperator(_sym()), 3, steps=2),
    r"\bsteps must be",
)
for label, value in [("1", 1), ("2.5", 2.5), ("a string", "8"), ("None", None)]:
    case(
        f"curvature.hutchinson_trace(samples = {label})",
        lambda tmp, v=value: _c().hutchinson_trace(_c().DenseOperator(_sym()), v),
        r"\bsamples must be",
    )
for label, kw, match in [
    ("vectors = 0", dict(vectors=0), r"\bvectors must be"),
    ("vectors = 2.5", dict(vectors=2.5), r"\bvectors must be"),
    ("steps = 0", dict(steps=0), r"\bsteps must be"),
    ("sigma = 0 (a NaN density)", dict(sigma=0.0), r"\bsigma must be"),
    ("sigma = -1 (a negative density)", dict(sigma=-1.0), r"\bsigma must be"),
    ("sigma = nan", dict(sigma=math.nan), r"\bsigma must be"),
    ("a 2-d grid", dict(grid=torch.zeros(3, 3, dtype=torch.float64)), r"\bgrid"),
    ("a grid with nan", dict(grid=torch.tensor([0.0, math.nan], dtype=torch.float64)), r"\bgrid"),
    ("an empty grid", dict(grid=torch.zeros(0, dtype=torch.float64)), r"\bgrid"),
    ("generator = 5", dict(generator=5), r"\bgenerator"),
]:
    case(
        f"curvature.spectral_density({label})",
        lambda tmp, k=kw: _c().spectral_density(
            _c().DenseOperator(_sym()), **dict(dict(vectors=1, steps=4), **k)
        ),
        match,
    )
for label, v0 in [
    ("= 0 (a NaN start)", torch.zeros(4, dtype=torch.float64)),
    ("of the wrong length", torch.ones(5, dtype=torch.float64)),
    ("with nan", torch.tensor([1.0, math.nan, 0, 0], dtype=torch.float64)),
    ("in float32 for a float64 operator", torch.ones(4)),
    ("a list", [1.0, 0.0, 0.0, 0.0]),
]:
    case(
        f"curvature.lanczos v0 {label}",
        lambda tmp, v=v0: _c().lanczos(_c().DenseOperator(_sym()), 3, v0=v),
        r"\bv0",
    )
case("curvature.lanczos op = 5", lambda tmp: _c().lanczos(5, 3), r"\bop")
case(
    "curvature.DenseOperator of a non-square matrix",
    lambda tmp: _c().DenseOperator(torch.zeros(3, 4)),
    r"\bmatrix",
)
case(
    "curvature.DenseOperator of a 1-d tensor",
    lambda tmp: _c().DenseOperator(torch.zeros(3)),
    r"\bmatrix",
)
case(
    "curvature.DenseOperator of an asymmetric matrix (Lanczos assumes symmetry)",
    lambda tmp: _c().DenseOperator(torch.tensor([[1.0, 2.0], [0.0, 1.0]])),
    r"\bmatrix.*symmetric",
)
case(
    "curvature.DenseOperator of a matrix with nan",
    lambda tmp: _c().DenseOperator(torch.tensor([[1.0, math.nan], [math.nan, 1.0]])),
    r"\bmatrix",
)
case(
    "curvature.DenseOperator(v) of the wrong length",
    lambda tmp: _c().DenseOperator(_sym())(torch.ones(3, dtype=torch.float64)),
    r"\bv must be",
)
case(
    "curvature.HessianOperator(model = 5)",
    lambda tmp: _c().HessianOperator(5, lambda m, b: 0, [1]),
    r"\bmodel",
)
case(
    "curvature.HessianOperator(loss_fn = 5)",
    lambda tmp: _c().HessianOperator(torch.nn.Linear(2, 1), 5, [1]),
    r"\bloss_fn",
)
case(
    "curvature.HessianOperator(batches = 5)",
    lambda tmp: _c().HessianOperator(torch.nn.Linear(2, 1), lambda m, b: 0, 5),
    r"\bbatches",
)
case(
    "curvature.HessianOperator(mode = None)",
    lambda tmp: _c().HessianOperator(torch.nn.Linear(2, 1), lambda m, b: 0, [1], mode=None),
    r"\bmode",
)
case(
    "curvature.HessianOperator(v) in float32 for a float64 model",
    lambda tmp: (lambda op: op(torch.ones(op.dim)))(_hessian()),
    r"\bv must be",
)
case(
    "curvature.HessianOperator(v) a numpy vector",
    lambda tmp: (lambda op: op(np.ones(op.dim)))(_hessian()),
    r"\bv must be",
)


# --- lpcheck.models -------------------------------------------------------------------------------


def _m():
    from lpcheck import models

    return models


for label, value in [("resnet34", "resnet34"), ("None", None), ("a list", ["resnet18"]), ("3", 3)]:
    case(
        f"models.build(name = {label})",
        lambda tmp, v=value: _m().build(v),
        r"\bmodel must be|\bname",
    )
for label, value in [
    ("0", 0),
    ("2.5", 2.5),
    ("True", True),
    ("a string", "10"),
    ("None", None),
    ("nan", math.nan),
]:
    case(
        f"models.build(num_classes = {label})",
        lambda tmp, v=value: _m().build("vgg11", num_classes=v),
        r"\bnum_classes must be",
    )
for label, value in [
    ("0", 0),
    ("-1", -1.0),
    ("nan", math.nan),
    ("inf", math.inf),
    ("True", True),
    ("a string", "1"),
    ("None", None),
]:
    case(
        f"models.build(width = {label})",
        lambda tmp, v=value: _m().build("resnet18", width=v),
        r"\bwidth",
    )
case(
    "models.build(width = 1e9): terabytes of parameters",
    lambda tmp: _m().build("resnet18", width=1e9),
    r"\bwidth",
)
case(
    "models.build(num_classes = 1e13): a classifier beyond memory",
    lambda tmp: _m().build("vgg11", num_classes=10**13),
    r"\bnum_classes",
)
case(
    "models.resnet18(num_classes = 0)",
    lambda tmp: _m().resnet18(num_classes=0),
    r"\bnum_classes must be",
)
case("models.resnet50(width = nan)", lambda tmp: _m().resnet50(width=math.nan), r"\bwidth")
case(
    "models.vgg11(num_classes = 2.5)",
    lambda tmp: _m().vgg11(num_classes=2.5),
    r"\bnum_classes must be",
)
case("models.VGG(name = 'vgg19')", lambda tmp: _m().VGG("vgg19"), r"\bname")


# estimate / Probe
# ---------------------------------------------------------------------------------------------
# Probe's and fit_run's arguments (lpcheck.estimate), best_c2_c3 and the no-cap form of
# lpcheck.bounds.


def _net_data(seed=0):
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    gen = torch.Generator().manual_seed(seed)
    return net, (torch.randn(32, 4, generator=gen), torch.randint(0, 3, (32,), generator=gen))


def _probe(**kw):
    from lpcheck.estimate import Probe

    net, data = _net_data()
    return Probe(net, data, batch_size=8, samples=2, **kw)


def _optimizer(net, groups=None):
    from lpcheck.optim import LPSGDM

    return LPSGDM(groups or net.parameters(), lr=0.01, p=4.0, weight_decay=0.01)


def _shifted(out, y):  # a loss with f* >= -10 that is negative here
    import torch

    return torch.nn.functional.cross_entropy(out, y) - 10.0


class _Measured:
    """A probe measured with a bad loss bound; `unchanged` checks that the refusal left it as it
    was."""

    def __init__(self, **kw):
        self.kw = kw

    def run(self, tmp):
        self.probe = _probe(loss_fn=_shifted, **self.kw)
        self.state = self.probe.generator.get_state()
        self.probe.measure(_optimizer(self.probe.module), step=0)

    def unchanged(self, tmp):
        import torch

        assert self.probe.records == [], "a refused measurement was recorded"
        assert torch.equal(self.probe.generator.get_state(), self.state), (
            "the probe's generator moved"
        )


def _record(step=0, loss=2.0, lr=0.01, grad_sq=1.0):
    return {
        "step": step,
        "epoch": 1,
        "p": 4.0,
        "lr": lr,
        "K": 2,
        "loss": loss,
        "grad_sq": grad_sq,
        "grad_norm_q": 1.0,
        "samples": {
            "align": [0.8, 0.9],
            "moment": [2.0, 2.5],
            "noise": [1.0, 1.1],
            "noise_l2": [0.5, 0.5],
        },
        "pairs": [],
    }


def _fit(records=None, **kw):
    from lpcheck.estimate.fit import fit_run

    return fit_run(
        records or [_record(0), _record(5, lr=0.02)], **{"T": 10, "resamples": 100, **kw}
    )


def _best(**kw):
    from lpcheck.estimate.fit import best_c2_c3

    return best_c2_c3(
        [1.0, 2.0], [3.0, 4.0], **{"c1": 0.5, "L": 10.0, "delta": 1.0, "T": 100, **kw}
    )


def _intervals(samples, level):
    from lpcheck.estimate.fit import intervals

    return intervals(samples, level)


_below, _negative = _Measured(loss_lower_bound=-5.0), _Measured()

CASES += [
    Case(
        "api",
        "Probe loss_lower_bound nan",
        lambda tmp: _probe(loss_lower_bound=math.nan),
        r"loss_lower_bound must be a real number",
    ),
    Case(
        "api",
        "Probe loss_lower_bound inf",
        lambda tmp: _probe(loss_lower_bound=math.inf),
        r"loss_lower_bound must be a finite real number",
    ),
    Case(
        "api",
        "Probe loss_lower_bound a string",
        lambda tmp: _probe(loss_lower_bound="0"),
        r"loss_lower_bound must be a real number",
    ),
    Case(
        "api", "Probe seed negative", lambda tmp: _probe(seed=-1), r"seed must be an integer >= 0"
    ),
    Case(
        "api", "Probe seed not an integer", lambda tmp: _probe(seed=1.5), r"seed must be an integer"
    ),
    Case(
        "api",
        "Probe loss_fn not callable",
        lambda tmp: _probe(loss_fn="mse"),
        r"loss_fn must be a callable",
    ),
    Case(
        "api",
        "Probe measure: a loss below the stated loss_lower_bound",
        _below.run,
        r"loss_lower_bound = -5 is above the measured loss",
        unchanged=_below.unchanged,
    ),
    Case(
        "api",
        "Probe measure: a negative loss and no loss_lower_bound",
        _negative.run,
        r"negative.*loss_lower_bound",
        unchanged=_negative.unchanged,
    ),
    Case(
        "api",
        "Probe measure: param groups disagree on eps",
        lambda tmp: (
            lambda p: p.measure(
                _optimizer(
                    p.module,
                    [
                        {"params": list(p.module.parameters())[:2]},
                        {"params": list(p.module.parameters())[2:], "eps": 1e-6},
                    ],
                ),
                step=0,
            )
        )(_probe()),
        r"param groups disagree on eps",
    ),
    Case("api", "fit_run T 0", lambda tmp: _fit(T=0), r"T must be an integer >= 1"),
    Case("api", "fit_run T a string", lambda tmp: _fit(T="10"), r"T must be an integer"),
    Case(
        "api",
        "fit_run confidence nan",
        lambda tmp: _fit(confidence=math.nan),
        r"confidence must be a real number",
    ),
    Case(
        "api",
        "fit_run confidence 1",
        lambda tmp: _fit(confidence=1.0),
        r"confidence must be a finite real number in \(0, 1\)",
    ),
    Case(
        "api",
        "fit_run resamples 10",
        lambda tmp: _fit(resamples=10),
        r"resamples must be an integer >= 100",
    ),
    Case(
        "api", "fit_run seed negative", lambda tmp: _fit(seed=-3), r"seed must be an integer >= 0"
    ),
    Case(
        "api",
        "fit_run lr_used negative",
        lambda tmp: _fit(lr_used=-0.1),
        r"lr_used must be a finite real number >= 0",
    ),
    Case(
        "api",
        "fit_run lr_used nan",
        lambda tmp: _fit(lr_used=math.nan),
        r"lr_used must be a real number",
    ),
    Case(
        "api",
        "fit_run lr_used a string",
        lambda tmp: _fit(lr_used="0.1"),
        r"lr_used must be the run's peak lr",
    ),
    Case(
        "api",
        "fit_run lr_used below a checkpoint's lr",
        lambda tmp: _fit(lr_used=0.015),
        r"lr_used gives a largest lr of 0.015, but the lr at a checkpoint was 0.02",
    ),
    Case(
        "api",
        "fit_run lr_used a sequence of the wrong length",
        lambda tmp: _fit(lr_used=[0.02] * 3),
        r"lr_used as a sequence must hold the lr of each of the T = 10 steps, got 3",
    ),
    Case(
        "api",
        "fit_run lr_used a schedule giving nan",
        lambda tmp: _fit(lr_used=lambda t: math.nan),
        r"lr_used\(0\) must be a real number",
    ),
    Case(
        "api",
        "fit_run lr_used a schedule giving inf",
        lambda tmp: _fit(lr_used=lambda t: math.inf),
        r"lr_used\(0\) must be a finite real number",
    ),
    Case(
        "api",
        "fit_run loss_lower_bound nan",
        lambda tmp: _fit(loss_lower_bound=math.nan),
        r"loss_lower_bound must be a real number",
    ),
    Case(
        "api",
        "fit_run loss_lower_bound above a loss",
        lambda tmp: _fit(loss_lower_bound=2.5),
        r"loss_lower_bound = 2.5 is above the loss measured at step 0",
    ),
    Case(
        "api",
        "fit_run loss_lower_bound equal to f(theta_0)",
        lambda tmp: _fit(
            [_record(0, loss=2.0), _record(5, loss=3.0, lr=0.02)], loss_lower_bound=2.0
        ),
        r"loss_lower_bound = 2 equals the loss at the first checkpoint",
    ),
    Case(
        "api",
        "fit_run a negative loss and no loss_lower_bound",
        lambda tmp: _fit([_record(0, loss=-1.0), _record(5, loss=-2.0, lr=0.02)]),
        r"negative.*pass loss_lower_bound",
    ),
    Case(
        "api",
        "intervals level 1",
        lambda tmp: _intervals({"a": [1.0, 2.0]}, 1.0),
        r"level must be a finite real number in \(0, 1\)",
    ),
    Case("api", "intervals one sample (K 1)", lambda tmp: _intervals({"a": [1.0]}, 0.9), r"K >= 2"),
    Case(
        "api",
        "intervals a nan sample",
        lambda tmp: _intervals({"a": [1.0, math.nan]}, 0.9),
        r"samples must be finite.*'a'",
    ),
    Case(
        "api",
        "best_c2_c3 delta 0",
        lambda tmp: _best(delta=0.0),
        r"delta must be a finite real number > 0",
    ),
    Case("api", "best_c2_c3 c1 nan", lambda tmp: _best(c1=math.nan), r"c1 must be a real number"),
    Case(
        "api",
        "best_c2_c3 L negative",
        lambda tmp: _best(L=-1.0),
        r"L must be a finite real number > 0",
    ),
    Case(
        "api",
        "best_c2_c3 T below 1",
        lambda tmp: _best(T=0.5),
        r"T must be a finite real number >= 1",
    ),
    Case(
        "api",
        "bounds.theorem1_bound_no_cap c2 0",
        lambda tmp: __import__("lpcheck.bounds").bounds.theorem1_bound_no_cap(
            0.5, 0.0, 1.0, 1.0, 10
        ),
        r"c2 must be > 0 when there is no step cap",
    ),
]


# ---------------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------------


def _methods():
    from lpcheck import methods

    return methods


def _make(name, **hp):
    return lambda tmp: _methods().make(name, **hp)


# every hyperparameter of every built-in, refused by name
METHOD_BAD_HP = [
    ("lpsgd", dict(p=1.5), r"\bp must be"),
    ("lpsgd", dict(p=math.nan), r"\bp must be"),
    ("lpsgd", dict(p=4.0, eps=0.0), r"\beps must be"),
    ("lpsgd", dict(p="4"), r"\bp must be"),
    ("lpsgd", {}, r"lpsgd needs p"),
    ("lpsgdm", dict(p=4.0, momentum=1.0), r"\bmomentum must be"),
    ("lpsgdm", dict(p=4.0, eps=-1.0), r"\beps must be"),
    ("sgd", dict(momentum=0.9), r"sgd has no hyperparameter momentum"),
    ("sgdm", dict(momentum=-0.1), r"\bmomentum must be"),
    ("sgdm", dict(momentum=True), r"\bmomentum must be"),
    ("heavyball", dict(momentum=1.0), r"\bmomentum must be"),
    ("heavyball", dict(dampening=1.5), r"\bdampening must be"),
    ("heavyball", dict(nesterov="yes"), r"\bnesterov must be"),
    (
        "heavyball",
        dict(nesterov=True, dampening=0.1),
        r"nesterov needs momentum > 0 and dampening = 0",
    ),
    ("sign", dict(momentum=math.inf), r"\bmomentum must be"),
    ("lion", dict(betas=(0.9, 1.0)), r"betas\[1\] must be"),
    ("lion", dict(betas=0.9), r"\bbetas must be two numbers"),
    ("steepest", dict(p=1.0), r"\bp must be"),
    ("steepest", {}, r"steepest needs p"),
    ("adam", dict(betas=(1.0, 0.9)), r"betas\[0\] must be"),
    ("adam", dict(eps=0.0), r"\beps must be"),
    ("adam", dict(amsgrad=1), r"\bamsgrad must be"),
    ("rmsprop", dict(alpha=1.0), r"\balpha must be"),
    ("rmsprop", dict(eps=math.nan), r"\beps must be"),
    ("rmsprop", dict(momentum=-1.0), r"\bmomentum must be"),
    ("rmsprop", dict(centered="no"), r"\bcentered must be"),
    ("scion", dict(radius=0.0), r"\bradius must be"),
    ("scion", dict(vector="max"), r"\bvector must be one of"),
    ("scion", dict(solver="qr"), r"\bsolver must be one of"),
    ("scion", dict(ns_steps=0), r"\bns_steps must be"),
    ("scion", dict(momentum=1.0), r"\bmomentum must be"),
    ("clipped", dict(rho=0.0), r"\brho must be"),
    ("clipped", dict(rho=-1.0), r"\brho must be"),
    ("clipped", dict(constrained="x"), r"\bconstrained must be"),
    ("clipped", dict(radius=math.inf), r"\bradius must be"),
]
for name, hp, match in METHOD_BAD_HP:
    args = ", ".join(f"{k}={v!r}" for k, v in hp.items()) or "no p"
    case(f"methods.make({name!r}, {args})", _make(name, **hp), match)
case("methods.make unknown name", _make("adamax"), r"unknown method 'adamax'; choose from")
for label, spec, match in [
    ("unknown name", "adamax", r"unknown method 'adamax'"),
    ("empty", "", r"optimizer must be a method name"),
    ("a number", 3, r"optimizer must be a method name"),
    ("not key=value", "adam:0.9", r"key=value pairs"),
    ("unknown hyperparameter", "adam:lr=0.1", r"adam has no hyperparameter lr"),
    (
        "a missing module",
        "no_such_module_lpcheck:Opt",
        r"cannot import module 'no_such_module_lpcheck'",
    ),
    ("a missing class", "torch.optim:NoSuch", r"has no attribute 'NoSuch'"),
    ("not a class of either kind", "math:pi", r"neither a lpcheck.methods.Method subclass"),
]:
    case(f"methods.resolve {label}", lambda tmp, s=spec: _methods().resolve(s), match)
case(
    "methods.resolve a missing file",
    lambda tmp: _methods().resolve(str(tmp / "nope.py") + ":Opt"),
    r"does not exist",
    raises=(FileNotFoundError,),
)


def _sgdm_update(**kw):
    def run(tmp):
        m, k = _methods().make("sgdm"), dict(kw)
        g = [torch.zeros(3)]
        m.update(k.pop("grads", g), k.pop("state", m.init(g)), **k)

    return run


for label, kw, match in [
    (
        "a state of another method",
        dict(state={"exp_avg": [torch.zeros(3)]}),
        r"state must hold \['momentum_buffer'\]",
    ),
    (
        "a state of the wrong shape",
        dict(state={"momentum_buffer": [torch.zeros(2)]}),
        r"must have shape \(3,\)",
    ),
    (
        "integer gradients",
        dict(grads=[torch.zeros(3, dtype=torch.int64)]),
        r"grads\[0\] must be a real floating",
    ),
    ("batched not a bool", dict(batched=1), r"\bbatched must be"),
    ("hp out of range", dict(hp={"momentum": 1.5}), r"\bmomentum must be"),
    (
        "params of other shapes",
        dict(params=[torch.zeros(4)]),
        r"params and grads must have the same shapes",
    ),
]:
    case(f"Method.update {label}", _sgdm_update(**kw), match)
case(
    "Method.update without the theta it needs",
    lambda tmp: (lambda m, g: m.update(g, m.init(g)))(
        _methods().make("clipped", constrained=True), [torch.zeros(2, 2)]
    ),
    r"needs params \(theta\)",
)
case(
    "Method.update eps = 1e-46 in float32",
    lambda tmp: (lambda m, g: m.update(g, m.init(g)))(
        _methods().make("lpsgd", p=4.0, eps=1e-46), [torch.zeros(3)]
    ),
    r"eps = 1e-46 rounds to 0 in torch.float32",
)
for label, spec, match in [
    ("lp:0.5", "lp:0.5", r"\bp must be"),
    ("l3", "l3", r"norm must be one of"),
    ("lp:x", "lp:x", r"lp:P.*needs a number"),
]:
    case(f"methods.parse_norm {label}", lambda tmp, s=spec: _methods().parse_norm(s), match)
case("Layerwise radius 0", lambda tmp: _methods().Layerwise(radius=0.0), r"\bradius must be")


def _method_opt(spec="adam", **kw):
    def make():
        params = _params()
        opt = _methods().as_optimizer(spec, params, **{"lr": 1e-2, **kw})
        _step(opt, params)
        return opt, params

    return make


def _method_build(spec="adam", **kw):
    def run(tmp):
        _method_opt(spec, **kw)()

    return run


for label, value in BAD_NUMBERS + [("-1", -1.0), ("inf", math.inf)]:
    case(f"as_optimizer lr = {label}", _method_build(lr=value), r"\blr must be")
    case(
        f"as_optimizer weight_decay = {label}",
        _method_build(weight_decay=value),
        r"\bweight_decay must be",
    )
case(
    "as_optimizer lr * weight_decay > 1",
    _method_build(lr=0.5, weight_decay=4.0),
    r"lr \* weight_decay",
)
case(
    "as_optimizer lr = 1e-46 rounds to 0 in float32",
    _method_build(lr=1e-46),
    r"lr = 1e-46 rounds to 0",
)
case(
    "as_optimizer unknown hyperparameter",
    _method_build(nesterov=True),
    r"adam has no hyperparameter nesterov",
)
case("as_optimizer bad hyperparameter", _method_build(betas=(0.9, 1.5)), r"betas\[1\] must be")
case(
    "as_optimizer of a torch optimizer",
    lambda tmp: _methods().as_optimizer(torch.optim.SGD(_params(), lr=0.1), _params()),
    r"method must be a method",
)
for label, key, value, match in [
    ("lr = -1", "lr", -1.0, r"\blr must be"),
    ("betas = (1.5, 0.9)", "betas", (1.5, 0.9), r"betas\[0\] must be"),
    ("eps = 0", "eps", 0.0, r"\beps must be"),
    ("amsgrad = 'yes'", "amsgrad", "yes", r"\bamsgrad must be"),
    ("weight_decay = -1", "weight_decay", -1.0, r"\bweight_decay must be"),
]:
    opt_case(
        f"as_optimizer('adam').step after group {label}",
        _method_opt(),
        _step_again,
        match,
        prepare=_edit(key, value),
    )
opt_case(
    "as_optimizer('clipped').step after group rho = 0",
    _method_opt("clipped"),
    _step_again,
    r"\brho must be",
    prepare=_edit("rho", 0.0),
)
for label, edit, match in [
    (
        "a negative step count",
        lambda sd: sd["state"][0].update(step=torch.tensor(-1.0)),
        r"\['step'\] must be",
    ),
    (
        "a fractional step count",
        lambda sd: sd["state"][0].update(step=torch.tensor(2.5)),
        r"\['step'\] must be",
    ),
    (
        "a NaN exp_avg_sq",
        lambda sd: sd["state"][0].update(exp_avg_sq=_nan_at_0(sd["state"][0]["exp_avg_sq"])),
        r"exp_avg_sq.*finite",
    ),
    ("no eps", lambda sd: sd["param_groups"][0].pop("eps"), r"has no \['eps'\]"),
    ("betas = (1.0, 0.9)", _set_group("betas", (1.0, 0.9)), r"betas\[0\] must be"),
]:
    opt_case(f"as_optimizer('adam').load_state_dict {label}", _method_opt(), _load(edit), match)
opt_case(
    "as_optimizer('adam').add_param_group eps = -1",
    _method_opt(),
    _add(lambda ps: {"params": _params(), "eps": -1.0}),
    r"\beps must be",
)


def _box(opt_factory, **update):
    def run(tmp):
        params = _params()
        box = _methods().BlackBox(opt_factory(params))
        _grads(params)
        box.update([p.grad for p in params], **update)

    return run


case(
    "BlackBox lr = 0",
    _box(lambda ps: torch.optim.SGD(ps, lr=0.0)),
    r"param group 0: lr must be > 0",
)
case(
    "BlackBox batched",
    _box(lambda ps: torch.optim.SGD(ps, lr=0.1), batched=True),
    r"batched=True is not possible",
)
case(
    "BlackBox of a class",
    lambda tmp: _methods().BlackBox(torch.optim.SGD),
    r"optimizer must be a torch.optim.Optimizer",
)
case(
    "BlackBox of LBFGS (needs a closure)",
    _box(lambda ps: torch.optim.LBFGS(ps)),
    r"failed without a closure",
)


# ---------------------------------------------------------------------------------------------
# probe: any method
# ---------------------------------------------------------------------------------------------
# Probe(norm=), measure with any optimizer or a layer Method (state, lr, weight_decay),
# directions.plan, core.statistics, smoothness in a norm, fit_run over records of different
# geometries. Every refusal comes before any work: the probe records nothing, its generator and the
# optimizer's state stay as they were.


class _AnyMeasured:
    """probe.measure(target(net), **kw) refused; `unchanged`: no record, generator and optimizer
    state as before."""

    def __init__(self, target, **kw):
        self.target, self.kw = target, kw

    def run(self, tmp):
        import copy

        self.probe = _probe()
        self.gen = self.probe.generator.get_state()
        self.obj = self.target(self.probe.module)
        self.before = (
            copy.deepcopy(self.obj.state_dict()) if hasattr(self.obj, "state_dict") else None
        )
        kw = {
            k: v(self.probe.module) if callable(v) else v for k, v in self.kw.items()
        }  # a state from the net
        self.probe.measure(self.obj, step=0, **kw)

    def unchanged(self, tmp):
        import torch

        assert self.probe.records == [], "a refused measurement was recorded"
        assert torch.equal(self.probe.generator.get_state(), self.gen), (
            "the probe's generator moved"
        )
        if self.before is not None:
            assert repr(self.obj.state_dict()) == repr(self.before), "the optimizer's state changed"


def _adam_method():
    return _methods().make("adam")


def _torch_adam(net, **kw):
    import torch

    return torch.optim.Adam(net.parameters(), lr=0.01, **kw)


def _split_steepest(net):
    ps = list(net.parameters())
    return _methods().as_optimizer(
        "steepest:p=4", [{"params": ps[:2]}, {"params": ps[2:], "p": 3.0}], lr=0.1
    )


def _stats(**kw):
    import torch

    from lpcheck.estimate import core

    args = dict(
        full_grad=torch.ones(4, dtype=torch.float64),
        stoch_grads=torch.ones(2, 4, dtype=torch.float64),
        directions=torch.ones(2, 4, dtype=torch.float64),
        norm="l2",
    )
    return core.statistics(**{**args, **kw})


def _geometry_records():
    rec = _record(0)
    return [
        dict(rec, method="sgd", phi="dual", norm="l2", directions="scaled"),
        dict(
            _record(5, lr=0.02),
            method="sgd",
            phi="dual",
            norm="linf",
            directions="scaled",
            norm_from="override",
        ),
    ]


_any = {
    "no lr with a Method": _AnyMeasured(lambda net: _adam_method()),
    "lr nan with a Method": _AnyMeasured(lambda net: _adam_method(), lr=math.nan),
    "lr negative with a Method": _AnyMeasured(lambda net: _adam_method(), lr=-0.1),
    "weight_decay negative with a Method": _AnyMeasured(
        lambda net: _adam_method(), lr=0.1, weight_decay=-1.0
    ),
    "lr * weight_decay > 1 with a Method": _AnyMeasured(
        lambda net: _adam_method(), lr=0.5, weight_decay=4.0
    ),
    "a state of another method": _AnyMeasured(
        lambda net: _adam_method(),
        lr=0.1,
        state=lambda net: {"momentum_buffer": list(net.parameters())},
    ),
    "state and lr with a torch optimizer": _AnyMeasured(_torch_adam, lr=0.1),
    "a torch optimizer over part of the model": _AnyMeasured(
        lambda net: __import__("torch").optim.Adam(list(net.parameters())[:2], lr=0.01)
    ),
    "param groups giving different norms": _AnyMeasured(_split_steepest),
    "a black box with lr 0": _AnyMeasured(
        lambda net: _torch_adam(net, maximize=True).__class__(
            net.parameters(), lr=0.0, maximize=True
        )
    ),
}
_any_match = {
    "no lr with a Method": r"lr is needed with a Method",
    "lr nan with a Method": r"\blr must be a real number",
    "lr negative with a Method": r"\blr must be a finite real number >= 0",
    "weight_decay negative with a Method": r"weight_decay must be a finite real number >= 0",
    "lr * weight_decay > 1 with a Method": r"lr \* weight_decay must be <= 1",
    "a state of another method": r"state must hold .*exp_avg.* a state of another method",
    "state and lr with a torch optimizer": (
        r"state, lr and weight_decay are for a lpcheck.methods.Method"
    ),
    "a torch optimizer over part of the model": r"exactly the model's trainable parameters",
    "param groups giving different norms": (
        r"the param groups give different norms \(lp:3, lp:4\).*norm="
    ),
    "a black box with lr 0": r"param group 0: lr must be > 0 for the black box, got 0",
}
for _label, _measured in _any.items():
    case(
        f"Probe measure: {_label}", _measured.run, _any_match[_label], unchanged=_measured.unchanged
    )

case("Probe norm 'lp:0.5'", lambda tmp: _probe(norm="lp:0.5"), r"norm 'lp:0.5': p must be")
case(
    "Probe norm 'lp:x'",
    lambda tmp: _probe(norm="lp:x"),
    r"norm 'lp:P' needs a number P in \[1, inf\]",
)
case(
    "Probe norm 'nuclear'",
    lambda tmp: _probe(norm="nuclear"),
    r"norm must be one of l2, linf, l1, lp:P, spectral",
)
case("Probe norm a number", lambda tmp: _probe(norm=2), r"norm must be a Norm or one of")
case(
    "Probe measure: a string for the optimizer",
    lambda tmp: _probe().measure("adam", step=0),
    r"optimizer must be a torch.optim.Optimizer instance or a lpcheck.methods.Method, got str",
)
case(
    "Probe measure: an optimizer class",
    lambda tmp: _probe().measure(__import__("torch").optim.Adam, step=0),
    r"optimizer must be .*got type \(a class: construct it first\)",
)
case("core.statistics phi 'l3'", lambda tmp: _stats(phi="l3"), r"phi must be 'dual' or 'l2'")
case(
    "core.statistics directions of another shape",
    lambda tmp: _stats(
        directions=__import__("torch").ones(3, 4, dtype=__import__("torch").float64)
    ),
    r"directions must have the shape of stoch_grads \(2, 4\)",
)
case(
    "core.statistics numpy arrays",
    lambda tmp: _stats(stoch_grads=__import__("numpy").ones((2, 4))),
    r"statistics takes torch tensors",
)
case("core.statistics norm 'lp:0'", lambda tmp: _stats(norm="lp:0"), r"norm 'lp:0': p must be")
case(
    "core.statistics zero full gradient",
    lambda tmp: _stats(full_grad=__import__("torch").zeros(4, dtype=__import__("torch").float64)),
    r"full_grad is zero",
)
case(
    "core.FlatNorm of a string",
    lambda tmp: __import__("lpcheck.estimate.core").estimate.core.FlatNorm("l2"),
    r"norm must be a lpcheck.methods.Norm",
)
case(
    "smoothness.gradient_ratio numpy with a norm",
    lambda tmp: __import__("lpcheck.estimate.smoothness").estimate.smoothness.gradient_ratio(
        [0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0], _methods().parse_norm("linf")
    ),
    r"with a norm .* must be torch tensors",
)
case(
    "fit_run records of two geometries",
    lambda tmp: _fit(_geometry_records()),
    r"the records measure different methods or geometries",
)
case(
    "fit_run a record's phi 'l3'",
    lambda tmp: _fit([dict(r, phi="l3") for r in _geometry_records()[:1]]),
    r"a record's phi must be 'l2' or 'dual'",
)
