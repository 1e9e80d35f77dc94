"""Bad inputs found by a fresh search where the other areas were thin: `lpcheck verify` and `lpcheck
report` on the command line, and the API below the optimizers (lp with unusual tensors, fit_slope,
intervals, the rate problems, the Hessian operators), plus numbers too large for a float anywhere.

Each case was seen to fail on the code before its fix (silent, a traceback from deep inside torch,
numpy or the page builders, or a message without the argument's name). Only public names are used,
so the cases run against old checkouts too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from corpus import Case
from corpus import run_lpcheck as run_cli
from corpus._tiny import cwd, experiments_dir, quietly, remember, same_tree

AREA = "hunt"
CASES: list[Case] = []
HUGE = 10**400  # an int no float holds: float(HUGE) raises OverflowError


def case(name, run, match, raises=(ValueError,), unchanged=None, tags=()):
    CASES.append(Case(AREA, name, run, match, raises=raises, unchanged=unchanged, tags=tags))


# ---------------------------------------------------------------------------------------------
# numbers too large for a float (checks.as_number): every hyperparameter check goes through it
# ---------------------------------------------------------------------------------------------


def _param():
    return torch.nn.Parameter(torch.randn(3, generator=torch.Generator().manual_seed(0)))


def _lpsgd(**kw):
    from lpcheck.optim import LPSGD

    return LPSGD([_param()], **{"lr": 0.1, "p": 4.0, **kw})


def _lpsgdm(**kw):
    from lpcheck.optim import LPSGDM

    return LPSGDM([_param()], **{"lr": 0.1, "p": 4.0, **kw})


case("LPSGD lr an int too large for a float", lambda tmp: _lpsgd(lr=HUGE), r"^lr must be .*>= 0")
case(
    "LPSGD p an int too large for a float (p = inf is allowed, 10**400 is not a float)",
    lambda tmp: _lpsgd(p=HUGE),
    r"^p must be .*\[2, inf\].*too large for a float",
    tags=("traceback-before",),
)
case(
    "LPSGDM eps an int too large for a float",
    lambda tmp: _lpsgdm(eps=HUGE),
    r"^eps must be .*> 0",
    tags=("traceback-before",),
)


def _lp():
    from lpcheck import lp

    return lp


case(
    "lp.dual_exponent p an int too large for a float",
    lambda tmp: _lp().dual_exponent(HUGE),
    r"^p must be a real number in \[1, inf\]",
    tags=("traceback-before",),
)


def _dense(matrix=None):
    from lpcheck.curvature import DenseOperator

    return DenseOperator(torch.diag(torch.arange(1.0, 6.0)).double() if matrix is None else matrix)


def _spectral(**kw):
    from lpcheck.curvature import spectral_density

    return spectral_density(_dense(), 2, 3, **kw)


case(
    "curvature.spectral_density sigma an int too large for a float",
    lambda tmp: _spectral(sigma=HUGE),
    r"^sigma must be .*> 0",
    tags=("traceback-before",),
)

# ---------------------------------------------------------------------------------------------
# optimizers: what torch would run without, silently or to a crash at the first step
# ---------------------------------------------------------------------------------------------


def _meta_step(tmp):
    from lpcheck.optim import LPSGD

    p = torch.nn.Parameter(torch.zeros(3, device="meta"))
    opt = LPSGD([p], lr=0.1, p=4.0)
    p.grad = torch.zeros(3, device="meta")
    opt.step()


case(
    "LPSGD a parameter on the meta device (failed at the first step inside torch)",
    _meta_step,
    r"params\[0\] is on the meta device",
    tags=("traceback-before",),
)


def _group_with(key, value, cls="LPSGDM"):
    def run(tmp):
        from lpcheck import optim

        getattr(optim, cls)([{"params": [_param()], key: value}], lr=0.1, p=4.0)

    return run


case(
    "LPSGDM a param group with maximize=True (ignored: it descended)",
    _group_with("maximize", True),
    r"^maximize is a setting of other torch optimizers that LPSGDM does not have",
    tags=("silent-before",),
)
case(
    "LPSGDM a param group with Adam's betas (ignored)",
    _group_with("betas", (0.9, 0.99)),
    r"^betas is a setting of other torch optimizers that LPSGDM does not have",
    tags=("silent-before",),
)
case(
    "LPSGD a param group with SGD's nesterov (ignored)",
    _group_with("nesterov", True, "LPSGD"),
    r"^nesterov is a setting of other torch optimizers that LPSGD does not have",
    tags=("silent-before",),
)


class _AddGroup:
    """add_param_group with a foreign key on a stepped optimizer: refused, nothing added."""

    def run(self, tmp):
        self.p = _param()
        self.opt = _lpsgdm()
        self.before = len(self.opt.param_groups)
        self.opt.add_param_group({"params": [self.p], "dampening": 0.1})

    def unchanged(self, tmp):
        assert len(self.opt.param_groups) == self.before, "the group was added"


_add = _AddGroup()
case(
    "LPSGDM.add_param_group with SGD's dampening",
    _add.run,
    r"^dampening is a setting of other torch optimizers",
    unchanged=_add.unchanged,
    tags=("silent-before",),
)

# ---------------------------------------------------------------------------------------------
# lp with tensors torch's kernels cannot take
# ---------------------------------------------------------------------------------------------

case(
    "lp.lp_norm a sparse tensor",
    lambda tmp: _lp().lp_norm(torch.ones(3).to_sparse(), 3.0),
    r"^x must be a dense tensor",
    tags=("traceback-before",),
)
case(
    "lp.lp_norm a tensor on the meta device",
    lambda tmp: _lp().lp_norm(torch.ones(3, device="meta"), 3.0),
    r"^x is on the meta device",
    tags=("traceback-before",),
)
case(
    "lp.rescale a sparse gradient",
    lambda tmp: _lp().rescale(torch.ones(3).to_sparse(), 4.0, 1e-8),
    r"^g must be a dense tensor",
    tags=("traceback-before",),
)
case(
    "lp.steepest_descent a gradient on the meta device",
    lambda tmp: _lp().steepest_descent(torch.ones(3, device="meta"), 4.0),
    r"^g is on the meta device",
    tags=("traceback-before",),
)
case(
    "curvature.DenseOperator a sparse matrix",
    lambda tmp: _dense(torch.eye(3, dtype=torch.float64).to_sparse()),
    r"^matrix must be a dense tensor",
    tags=("traceback-before",),
)
case(
    "curvature.DenseOperator a matrix on the meta device",
    lambda tmp: _dense(torch.eye(3, device="meta")),
    r"^matrix must be a dense tensor.*meta",
    tags=("traceback-before",),
)

# ---------------------------------------------------------------------------------------------
# rates.fit_slope
# ---------------------------------------------------------------------------------------------

_T = [10, 100, 1000]
_V = np.exp(np.random.default_rng(0).normal(size=(8, 3))) * np.array([1.0, 0.5, 0.25])


def _fit(T=_T, values=_V, **kw):
    from lpcheck.rates import fit_slope

    return fit_slope(T, values, **{"n_boot": 100, **kw})


case(
    "fit_slope level a string",
    lambda tmp: _fit(level="0.9"),
    r"^level must be a real number in \(0, 1\)",
    tags=("traceback-before",),
)
case(
    "fit_slope seed negative (numpy's own message)",
    lambda tmp: _fit(seed=-1),
    r"^seed must be an integer >= 0",
    tags=("wrong-message-before",),
)
case(
    "fit_slope seed a float",
    lambda tmp: _fit(seed=1.5),
    r"^seed must be an integer >= 0",
    tags=("traceback-before",),
)
case(
    "fit_slope T strings",
    lambda tmp: _fit(T=["10", "1e2", "x"]),
    r"^T must be an array of real numbers",
    tags=("wrong-message-before",),
)
case(
    "fit_slope T a dict",
    lambda tmp: _fit(T={10: 1, 100: 2, 1000: 3}),
    r"^T must be an array of real numbers, got dict",
    tags=("traceback-before",),
)
case(
    "fit_slope values complex (the imaginary part was dropped)",
    lambda tmp: _fit(values=_V * (1 + 1j)),
    r"^values must be an array of real numbers, got dtype complex",
    tags=("silent-before",),
)
case(
    "fit_slope values ragged rows",
    lambda tmp: _fit(values=[[1.0, 0.5, 0.2], [1.0, 0.4]]),
    r"^values must be an array of real numbers",
    tags=("wrong-message-before",),
)


def _verdict(tail=None, **kw):
    from lpcheck.rates import verdict

    return verdict(_fit() if tail is None else tail, **kw)


case(
    "verdict tolerance negative (the edge moved past the claimed rate)",
    lambda tmp: _verdict(tolerance=-0.3),
    r"^tolerance must be a finite real number >= 0",
    tags=("silent-before",),
)
case(
    "verdict tolerance equal to |rate| (a mean that does not decay would be confirmed)",
    lambda tmp: _verdict(rate=-0.25, tolerance=0.25),
    r"^tolerance \(0.25\) must be < \|rate\| \(0.25\)",
)
case(
    "verdict max_residual nan (every fit then counted as not a power law)",
    lambda tmp: _verdict(max_residual=float("nan")),
    r"^max_residual must be a real number >= 0",
    tags=("silent-before",),
)
case(
    "verdict diverged negative ('-1 seed(s) diverged')",
    lambda tmp: _verdict(diverged=-1),
    r"^diverged must be an integer >= 0",
    tags=("silent-before",),
)
case(
    "verdict pre_asymptotic a string (any string was true)",
    lambda tmp: _verdict(pre_asymptotic="no"),
    r"^pre_asymptotic must be True or False",
    tags=("silent-before",),
)
case(
    "verdict tail a dict",
    lambda tmp: _verdict(tail={"slope": -0.5, "lo": -0.6, "hi": -0.4}),
    r"^tail must be a SlopeFit",
    tags=("traceback-before",),
)


def _simulate(**kw):
    from lpcheck.rates import make_method, make_problem, simulate

    a = {"T": 20, "eta": 0.01, "seeds": 2, "epochs": 2, **kw}
    return simulate(
        make_problem("strong"), make_method("sgd"), a.pop("T"), a.pop("eta"), a.pop("seeds"), **a
    )


case(
    "simulate T not an integer (int() truncated it)",
    lambda tmp: _simulate(T=20.5),
    r"^T must be an integer >= 1, got 20.5",
    tags=("silent-before",),
)
case(
    "simulate seeds True",
    lambda tmp: _simulate(seeds=True),
    r"^seeds must be an integer >= 1, got True",
    tags=("silent-before",),
)
case(
    "simulate eta a string",
    lambda tmp: _simulate(eta="0.1"),
    r"^eta must be finite and > 0",
    tags=("traceback-before",),
)
case(
    "simulate seed negative",
    lambda tmp: _simulate(seed=-1),
    r"^seed must be an integer in \[0, 2\*\*63 - 1\]",
    tags=("silent-before",),
)
case(
    "simulate checkpoint_count 0 (one checkpoint, silently)",
    lambda tmp: _simulate(checkpoint_count=0),
    r"^checkpoint_count must be an integer >= 1",
    tags=("silent-before",),
)
case(
    "simulate dtype a string",
    lambda tmp: _simulate(dtype="float64"),
    r"^dtype must be a floating torch dtype",
    tags=("traceback-before",),
)

# ---------------------------------------------------------------------------------------------
# estimate.fit.intervals
# ---------------------------------------------------------------------------------------------


def _intervals(samples, level=0.95):
    from lpcheck.estimate.fit import intervals

    return intervals(samples, level)


case(
    "intervals samples complex",
    lambda tmp: _intervals({"grad_sq": [1 + 1j, 2.0, 3.0]}),
    r"^samples\['grad_sq'\] must be a sequence of real numbers",
    tags=("traceback-before",),
)
case(
    "intervals samples a set (no order, no pairing across statistics)",
    lambda tmp: _intervals({"grad_sq": {1.0, 2.0, 3.0}}),
    r"^samples\['grad_sq'\] must be a sequence of real numbers, got set",
    tags=("traceback-before",),
)
case(
    "intervals samples strings",
    lambda tmp: _intervals({"grad_sq": ["1", "x", "2"]}),
    r"^samples\['grad_sq'\] must be a sequence of real numbers",
    tags=("wrong-message-before",),
)
case(
    "intervals samples a tensor on the meta device",
    lambda tmp: _intervals({"grad_sq": torch.ones(4, device="meta")}),
    r"^samples\['grad_sq'\] is on the meta device",
    tags=("traceback-before",),
)

# ---------------------------------------------------------------------------------------------
# rates problems
# ---------------------------------------------------------------------------------------------


def _quadratic(**kw):
    from lpcheck.rates.problems import Quadratic

    return Quadratic(**{"lam": [1.0, 2.0, 3.0], "center": [0.0] * 3, "x0": [1.0] * 3, **kw})


case(
    "Quadratic nu inf",
    lambda tmp: _quadratic(nu=float("inf")),
    r"^nu .*must be an integer >= 3",
    tags=("traceback-before",),
)
case(
    "Quadratic nu nan",
    lambda tmp: _quadratic(nu=float("nan")),
    r"^nu .*must be an integer >= 3",
    tags=("wrong-message-before",),
)
case(
    "Quadratic sigma a string",
    lambda tmp: _quadratic(sigma="1"),
    r"^sigma must be finite and >= 0",
    tags=("traceback-before",),
)
case(
    "Quadratic sigma True",
    lambda tmp: _quadratic(sigma=True),
    r"^sigma must be finite and >= 0, got True",
    tags=("silent-before",),
)
case(
    "Quadratic x0 with a nan",
    lambda tmp: _quadratic(x0=[float("nan"), 0.0, 0.0]),
    r"^x0 must be finite",
    tags=("silent-before",),
)
case(
    "Quadratic center with an inf",
    lambda tmp: _quadratic(center=[float("inf"), 0.0, 0.0]),
    r"^center must be finite",
    tags=("silent-before",),
)
case(
    "Quadratic lam with an inf (refused later as 'x')",
    lambda tmp: _quadratic(lam=[float("inf"), 1.0, 1.0]).L(2),
    r"^lam must be finite",
    tags=("wrong-message-before",),
)
case(
    "Quadratic lam complex",
    lambda tmp: _quadratic(lam=[1 + 1j, 2.0, 3.0]),
    r"^lam must be a vector of real numbers",
    tags=("traceback-before",),
)
case(
    "Quadratic lam empty",
    lambda tmp: _quadratic(lam=[], center=[], x0=[]),
    r"^lam must be a 1-D vector of at least one entry",
    tags=("traceback-before",),
)


def _logistic(**kw):
    from lpcheck.rates.problems import Logistic

    return Logistic(**{"n": 32, "d": 4, **kw})


case(
    "Logistic batch 0 (the loss's gradient dropped out of stoch_grad)",
    lambda tmp: _logistic(batch=0),
    r"^batch must be an integer in \[1, 32\]",
    tags=("silent-before",),
)
case(
    "Logistic lam negative (f_star is then no lower bound)",
    lambda tmp: _logistic(lam=-0.5),
    r"^lam must be a finite real number >= 0",
    tags=("silent-before",),
)
case(
    "Logistic flip above 1",
    lambda tmp: _logistic(flip=1.5),
    r"^flip must be a finite real number in \[0, 1\]",
    tags=("silent-before",),
)


def _smooth(D, p):
    from lpcheck.rates.problems import diagonal_smoothness

    return diagonal_smoothness(D, p)


case(
    "diagonal_smoothness p a string",
    lambda tmp: _smooth([1.0, 2.0], "3"),
    r"^p must be a real number in \[2, inf\]",
    tags=("silent-before",),
)
case(
    "diagonal_smoothness D negative (the norm dropped its sign)",
    lambda tmp: _smooth([-1.0, 2.0], 3.0),
    r"^D must be >= 0",
    tags=("silent-before",),
)


class _Problem:
    """A valid user problem; each case breaks one thing."""

    name = "mine"
    d = 2
    x0 = torch.zeros(2, dtype=torch.float64)
    f_star = 0.0

    def f(self, t):
        return (t**2).sum(-1)

    def grad(self, t):
        return 2 * t

    def L(self, p):
        return 2.0

    def stoch_grad(self, t, gen, full=None):
        return full


def _check(**attrs):
    from lpcheck.rates.problems import check_problem

    problem = _Problem()
    for k, v in attrs.items():
        setattr(problem, k, v)
    return check_problem(problem)


case(
    "check_problem f_star a string",
    lambda tmp: _check(f_star="0"),
    r"^problem.f_star must be a real number",
    tags=("traceback-before",),
)
case(
    "check_problem f returns a list",
    lambda tmp: _check(f=lambda t: [0.0]),
    r"^problem mine: f must return a real floating-point torch tensor, got list",
    tags=("traceback-before",),
)
case(
    "check_problem stoch_grad not finite",
    lambda tmp: _check(stoch_grad=lambda t, gen, full=None: full + float("nan")),
    r"^problem mine: stoch_grad is not finite",
    tags=("silent-before",),
)
case(
    "check_problem x0 complex",
    lambda tmp: _check(x0=torch.zeros(2, dtype=torch.complex128)),
    r"^problem.x0 must be a real floating-point tensor",
    tags=("silent-before",),
)

# ---------------------------------------------------------------------------------------------
# lpcheck verify
# ---------------------------------------------------------------------------------------------


def verify(*argv, setup=None):
    """A case body: `lpcheck verify ARGV` in the case's folder; the folder must stay as it was."""

    def run(tmp):
        if setup is not None:
            setup(tmp)
        remember(tmp)
        with cwd(tmp):
            run_cli("verify", *argv)

    return run


case(
    "verify --timeout too large for the gate's poll() (the host died)",
    verify("--timeout", "1e308", "--only", "eq10.*"),
    r"--timeout must be a number of seconds in \(0, 1e\+06\]",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "verify --only '' (ran everything)",
    verify("--only", "", "--list"),
    r"--only '' names no pattern",
    unchanged=same_tree,
    tags=("silent-before",),
)
case(
    "verify --only ',' (wrote a report before saying it matched nothing)",
    verify("--only", ",", "--jobs", "0"),
    r"--only ',' names no pattern",
    unchanged=same_tree,
    tags=("changed-state-before",),
)
case(
    "verify --list with --write-baseline (wrote nothing, said nothing)",
    verify("--list", "--write-baseline", "accepted.json"),
    r"--list runs nothing, so --write-baseline would do nothing",
    unchanged=same_tree,
    tags=("silent-before",),
)
case(
    "verify --list-packs with --strict",
    verify("--list-packs", "--strict"),
    r"--list-packs runs nothing, so --strict would do nothing",
    unchanged=same_tree,
    tags=("silent-before",),
)
case(
    "verify --baseline a binary file",
    verify(
        "--strict",
        "--baseline",
        "b.json",
        "--only",
        "eq10.*",
        setup=lambda tmp: (tmp / "b.json").write_bytes(b"\xff\xfe\x00\x01"),
    ),
    r"--baseline: b.json is not UTF-8 text",
    unchanged=same_tree,
    tags=("wrong-message-before",),
)
case(
    "verify --out under a file",
    verify("--out", "f/sub", "--only", "eq10.*", setup=lambda tmp: (tmp / "f").write_text("")),
    r"--out: f/sub cannot be made: f is a file",
    unchanged=same_tree,
    tags=("wrong-message-before",),
)

case(
    "verify --out '' (wrote verify.json into the current folder)",
    verify("--out", "", "--only", "eq10.*", "--jobs", "0"),
    r"--out is empty",
    unchanged=same_tree,
    tags=("silent-before",),
)


def _tiny_proofs(tmp):
    (tmp / "p").mkdir()
    (tmp / "p" / "mine.py").write_text(
        'from lpcheck.verify import obligation\n@obligation("mine.a", "holds")\ndef a():\n    '
        "pass\n"
    )
    (tmp / "o").mkdir()


case(
    "verify --write-baseline over the gate's own verify.json in --out",
    verify(
        "--no-builtin",
        "--proofs",
        "p",
        "--out",
        "o",
        "--write-baseline",
        "o/verify.json",
        "--jobs",
        "0",
        setup=_tiny_proofs,
    ),
    r"--write-baseline: o/verify.json is the gate's own report in --out",
    unchanged=same_tree,
    tags=("silent-before",),
)

# ---------------------------------------------------------------------------------------------
# lpcheck report
# ---------------------------------------------------------------------------------------------


def _results(*parts) -> Path:
    return experiments_dir().joinpath("results", *parts)


def _pillar(kind, change=None, extra=()):
    """setup: DIR r/ holding a copy of a real report of `kind` (its JSON changed by `change`)."""
    src = {
        "verify": ("verify", "verify.json"),
        "estimate": ("estimate-cpu", "constants.json"),
        "rates": ("rates-quick", "rates.json"),
    }[kind]

    def setup(tmp):
        (tmp / "r").mkdir()
        data = json.loads(_results(*src).read_text())
        if change is not None:
            change(data)
        (tmp / "r" / src[1]).write_text(json.dumps(data))
        for name in extra:
            shutil.copy(_results(src[0], name), tmp / "r" / name)

    return setup


def report(*argv, setup):
    def run(tmp):
        setup(tmp)
        remember(tmp)
        with cwd(tmp):
            quietly(run_cli, "report", *argv)

    return run


def _set(key, value):
    return lambda d: d.__setitem__(key, value)


def _drop_from_each(key, value):
    def change(d):
        for o in d["obligations"]:
            o.pop(key, None)

    return change


case(
    "report verify.json whose obligations are a string",
    report("r", "--out", "o.html", setup=_pillar("verify", _set("obligations", "x"))),
    r"DIR r: verify.json's 'obligations' must be a list",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "report verify.json whose summary is null",
    report("r", "--out", "o.html", setup=_pillar("verify", _set("summary", None))),
    r"DIR r: verify.json's 'summary' must be an object",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "report verify.json whose obligations lack 'status'",
    report("r", "--out", "o.html", setup=_pillar("verify", _drop_from_each("status", None))),
    r"DIR r: verify.json is not a verify report this lpcheck can read \(KeyError: 'status'\)",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "report constants.json whose records are a string (a page was written)",
    report("r", "--out", "o.html", setup=_pillar("estimate", _set("records", "x"))),
    r"DIR r: constants.json's 'records' must be a list",
    unchanged=same_tree,
    tags=("silent-before",),
)
case(
    "report rates.json whose problems are a list",
    report("r", "--out", "o.html", setup=_pillar("rates", _set("problems", []))),
    r"DIR r: rates.json's 'problems' must be an object",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "report rates.json without its config",
    report("r", "--out", "o.html", setup=_pillar("rates", lambda d: d.pop("config"))),
    r"DIR r: rates.json has no 'config'",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "report --out over the verify.md of a DIR",
    report("r", "--out", "r/verify.md", setup=_pillar("verify", extra=("verify.md",))),
    r"--out would replace r/verify.md, a file of DIR r",
    unchanged=same_tree,
    tags=("changed-state-before",),
)


def _raw(name, data: bytes):
    def setup(tmp):
        (tmp / "r").mkdir()
        (tmp / "r" / name).write_bytes(data)

    return setup


case(
    "report a verify.json that is not UTF-8",
    report("r", "--out", "o.html", setup=_raw("verify.json", b'{"obligations": "\xff\xfe"}')),
    r"r/verify.json is not a valid JSON report: not UTF-8",
    unchanged=same_tree,
    tags=("wrong-message-before",),
)
case(
    "report a rates.json nested deeper than the parser's stack",
    report("r", "--out", "o.html", setup=_raw("rates.json", b"[" * 100000 + b"]" * 100000)),
    r"r/rates.json is not a valid JSON report: nested too deeply",
    unchanged=same_tree,
    tags=("traceback-before",),
)

# ---------------------------------------------------------------------------------------------
# lpcheck rates --render-only
# ---------------------------------------------------------------------------------------------


def _render_with(*options):
    def run(tmp):
        shutil.copytree(_results("rates-quick"), tmp / "o")
        remember(tmp)
        with cwd(tmp):
            quietly(run_cli, "rates", "--render-only", "--out", "o", *options)

    return run


case(
    "rates --render-only with --rate (ignored: every verdict stayed at the measured rate)",
    _render_with("--rate", "-1/4"),
    r"--render-only redraws OUT/rates.json as it was measured and would ignore --rate",
    unchanged=same_tree,
    tags=("silent-before",),
)
case(
    "rates --render-only with --seeds and --problem (ignored)",
    _render_with("--seeds", "5", "--problem", "strong"),
    r"would ignore --problem, --seeds",
    unchanged=same_tree,
    tags=("silent-before",),
)

# ---------------------------------------------------------------------------------------------
# curvature: models and losses the Hessian products cannot use
# ---------------------------------------------------------------------------------------------

_X, _Y = torch.randn(8, 3, generator=torch.Generator().manual_seed(0)), torch.zeros(8)


def _mse(model, batch):
    return ((model(batch[0]).squeeze(-1) - batch[1]) ** 2).mean()


def _hessian(model=None, loss=_mse):
    from lpcheck.curvature import HessianOperator

    model = torch.nn.Linear(3, 1) if model is None else model
    return HessianOperator(model, loss, [(_X, _Y)])


def _top(tmp, **kw):
    from lpcheck.curvature import top_eigenvalues

    return top_eigenvalues(_hessian(**kw), 1)


case(
    "HessianOperator a model on the meta device",
    lambda tmp: _top(tmp, model=torch.nn.Linear(3, 1, device="meta")),
    r"^model's trainable parameter 0 must be a real floating-point tensor with values",
    tags=("traceback-before",),
)
case(
    "HessianOperator a complex model",
    lambda tmp: _top(tmp, model=torch.nn.Linear(3, 1, dtype=torch.complex64)),
    r"^model's trainable parameter 0 must be a real floating-point tensor",
    tags=("traceback-before",),
)
case(
    "top_eigenvalues of a loss that is nan (eigh failed to converge)",
    lambda tmp: _top(tmp, loss=lambda m, b: _mse(m, b) * float("nan")),
    r"^op returned inf or nan",
    tags=("traceback-before",),
)


def _trace_of_nan(tmp):
    from lpcheck.curvature import hutchinson_trace

    return hutchinson_trace(_hessian(loss=lambda m, b: _mse(m, b) * float("nan")), 4)


case(
    "hutchinson_trace of a loss that is nan (returned nan +- nan)",
    _trace_of_nan,
    r"^op returned inf or nan",
    tags=("silent-before",),
)
case(
    "lp.lp_norm a bool tensor (a mask read as ones)",
    lambda tmp: _lp().lp_norm(torch.tensor([True, False, True]), 3.0),
    r"^x must hold real numbers, got a bool tensor",
    tags=("silent-before",),
)
case(
    "lp.rescale a bool numpy array",
    lambda tmp: _lp().rescale(np.array([True, False]), 4.0, 1e-8),
    r"^g must hold real numbers, got a bool array",
    tags=("silent-before",),
)

# ---------------------------------------------------------------------------------------------
# lpcheck.verify's API: declarations and run_gate
# ---------------------------------------------------------------------------------------------


def _declare(decorator, *args, **kw):
    from lpcheck import verify

    return getattr(verify, decorator)(*args, **kw)(lambda: None)


case(
    "obligation uses a bare string (read letter by letter as assumptions 'A' and '1')",
    lambda tmp: _declare("obligation", "mine.a", "holds", uses="A1"),
    r"^uses must be a tuple of assumption names",
    tags=("silent-before",),
)
case(
    "obligation kind='control' (it could never pass: only control() declares one)",
    lambda tmp: _declare("obligation", "mine.a", "holds", kind="control"),
    r"^kind must be 'claim' or 'conformance'",
    tags=("silent-before",),
)
case(
    "obligation timeout True (one second)",
    lambda tmp: _declare("obligation", "mine.a", "holds", timeout=True),
    r"^timeout must be a finite number of seconds > 0",
    tags=("silent-before",),
)
case(
    "control statement not a string",
    lambda tmp: _declare("control", "mine.c", 42),
    r"^statement must be a non-empty string",
    tags=("silent-before",),
)


def _gate(**kw):
    from lpcheck.verify import run_gate

    return quietly(run_gate, only="eq10.*", **kw)


case(
    "run_gate timeout too large for the gate's poll()",
    lambda tmp: _gate(timeout=1e308),
    r"^timeout must be a finite real number in \(0, 1e\+06\]",
    tags=("traceback-before",),
)
case(
    "run_gate jobs negative",
    lambda tmp: _gate(jobs=-2),
    r"^jobs must be an integer >= 0",
    tags=("silent-before",),
)
case(
    "verify --baseline JSON with a byte-order mark (read as one line of text, one odd id)",
    verify(
        "--strict",
        "--baseline",
        "b.json",
        "--only",
        "eq10.*",
        "--jobs",
        "0",
        setup=lambda tmp: (tmp / "b.json").write_bytes(b'\xef\xbb\xbf{"accepted": [1]}'),
    ),
    r"--baseline: b.json must hold a list of finding ids",
    unchanged=same_tree,
    tags=("silent-before",),
)


def _logsum(**kw):
    from lpcheck.rates.problems import LogSum

    return LogSum(**{"x0": [1.0, -2.0], **kw})


case(
    "LogSum sigma negative (described as 'sigma = -1', its noise sign-flipped)",
    lambda tmp: _logsum(sigma=-1.0),
    r"^sigma must be finite and >= 0, got -1",
    tags=("silent-before",),
)
case(
    "LogSum x0 a matrix",
    lambda tmp: _logsum(x0=[[1.0, 2.0], [3.0, 4.0]]),
    r"^x0 must be a 1-D vector",
    tags=("silent-before",),
)
case(
    "Logistic x0 of the wrong length",
    lambda tmp: _logistic(x0=[0.0] * 3),
    r"^x0 has length 3: the problem's vectors must be vectors of one length d = 4",
    tags=("silent-before",),
)

# ---------------------------------------------------------------------------------------------
# lpcheck estimate on a user's tensors and loss: what the first batch alone does not show
# ---------------------------------------------------------------------------------------------

_USER = """
import torch


def build():
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 4, generator=g), torch.arange(32) % 3


def nan_late():
    x, y = data()
    x[20, 1] = float("nan")  # past the first batch of 8
    return x, y


def label_late():
    x, y = data()
    y[20] = -1
    return x, y


def test_label():
    x, y = data()
    y[29] = 3
    return x[:24], y[:24], x[24:], y[24:]


def meta():
    return torch.nn.Linear(4, 3, device="meta")


class Items(torch.utils.data.Dataset):
    # data()'s examples as a Dataset; `last` is one past the items it has, `bad` one odd item

    def __init__(self, n=32, last=None, bad=None):
        self.n, self.last, self.bad = n, last, bad

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.last:
            raise IndexError(f"no item {i}")
        x, y = data()
        if i == self.bad:
            return torch.zeros(5), int(y[i])  # 5 features for 4
        return x[i], int(y[i])


def off_by_one():
    return Items(last=31)


def ragged():
    return Items(bad=20)


def string_test():
    class Named(Items):
        def __getitem__(self, i):
            return super().__getitem__(i)[0], "cat"

    return Items(), Named(8)


def nan_loss(outputs, targets):
    return torch.nn.functional.cross_entropy(outputs, targets) * float("nan")
"""

_EST = ["--lr", "0.01", "--batch-size", "8", "--epochs", "1", "--checkpoints", "1"]
_EST += ["--samples", "2", "--resamples", "100", "--threads", "1", "--quiet"]


def estimate_user(data, *options, model="build"):
    """A case body: `lpcheck estimate` on _USER's build and DATA with `options` ('{mod}' is the
    module's path); the case's folder must stay as it was."""

    def run(tmp):
        import sys

        from corpus._tiny import isolated

        mod = tmp / "usermod.py"
        mod.write_text(_USER)
        argv = ["estimate", "--model", f"{mod}:{model}", "--data", f"{mod}:{data}", *_EST]
        argv += [o.replace("{mod}", str(mod)) for o in options] + ["--out", str(tmp / "out")]
        remember(tmp)
        saved = sys.dont_write_bytecode
        sys.dont_write_bytecode = True
        try:
            with isolated():
                quietly(run_cli, *argv)
        finally:
            sys.dont_write_bytecode = saved

    return run


case(
    "estimate --data tensors with a nan past the first batch (a traceback from the probe)",
    estimate_user("nan_late"),
    r"--data: .*nan_late\(\)'s training examples x must be finite, got inf or nan in 1 "
    r"example\(s\), the first at index 20",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "estimate --data a label -1 past the first batch (cross-entropy raised in training)",
    estimate_user("label_late"),
    r"--data: the training labels must be class indices in \[0, 2\] for cross-entropy .* got -1 "
    r"at example 20",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "estimate --data a test label 3 for a model of 3 outputs (raised at the end of the run)",
    estimate_user("test_label"),
    r"--data: the test labels must be class indices in \[0, 2\] .* got 3 at example 5",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "estimate --loss nan on the first batch (NonFiniteGradientError from the probe)",
    estimate_user("data", "--loss", "{mod}:nan_loss"),
    r"--loss / --data: .*nan_loss is nan on the first batch of 8 examples",
    unchanged=same_tree,
    tags=("traceback-before",),
)

case(
    "estimate --optimizer-args momentum NaN for torch.optim:SGD (trained, then 'diverged')",
    estimate_user(
        "data", "--optimizer", "torch.optim:SGD", "--optimizer-args", '{"momentum": NaN}'
    ),
    r"^lpcheck estimate: error: --optimizer-args: momentum is or holds NaN",
    unchanged=same_tree,
    tags=("late-before",),
)
case(
    "estimate --model a factory returning a model on the meta device (a traceback from .to())",
    estimate_user("data", model="meta"),
    r"--model: .*meta\(\) returned a model on the meta device",
    unchanged=same_tree,
    tags=("traceback-before",),
)

case(
    "estimate --data a Dataset whose len() promises one item more (IndexError in training)",
    estimate_user("off_by_one"),
    r"--data: the Dataset Items \(len\(\) = 32\): reading its items \[31\] .* raised IndexError: "
    r"no item 31 \(read from its training split before the run\)",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "estimate --data a test Dataset with string targets (a traceback at the end of the run)",
    estimate_user("string_test"),
    r"--data: the Dataset Named \(len\(\) = 8\): .* raised AttributeError: .* \(read from its "
    r"test split before the run\)",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "estimate --data a Dataset with one item of another shape past the first batch (refused "
    "mid-run, by name, where torch's collate raised)",
    estimate_user("ragged"),
    r"--data: the Dataset Items \(len\(\) = 32\): reading its items \[.*20.*\] .* raised "
    r"RuntimeError: stack expects each tensor to be equal size",
    tags=("traceback-before",),
)


def curvature_user(data, model="build"):
    """A case body: `lpcheck curvature` (one top eigenvalue) on _USER's MODEL and DATA; the case's
    folder must stay as it was."""

    def run(tmp):
        import sys

        mod = tmp / "usermod.py"
        mod.write_text(_USER)
        argv = ["curvature", "--model", f"{mod}:{model}", "--data", f"{mod}:{data}"]
        argv += ["--batch-size", "8", "--top", "1", "--bottom", "0", "--trace-products", "0"]
        argv += ["--slq-vectors", "0", "--threads", "1", "--quiet", "--out", str(tmp / "out")]
        remember(tmp)
        saved = sys.dont_write_bytecode
        sys.dont_write_bytecode = True
        try:
            quietly(run_cli, *argv)
        finally:
            sys.dont_write_bytecode = saved

    return run


case(
    "curvature --data a label -1 past the first batch (IndexError from a Hessian product)",
    curvature_user("label_late"),
    r"--data: the labels must be class indices in \[0, 2\] .* got -1 at example 20",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "curvature --data a nan past the first batch",
    curvature_user("nan_late"),
    r"--data: .*nan_late\(\)'s examples x must be finite, got inf or nan in 1 example\(s\), the "
    r"first at index 20",
    unchanged=same_tree,
    tags=("wrong-message-before",),
)
case(
    "curvature --model a factory returning a model on the meta device",
    curvature_user("data", model="meta"),
    r"--model: .*meta\(\) returned a model on the meta device",
    unchanged=same_tree,
    tags=("traceback-before",),
)

# ---------------------------------------------------------------------------------------------
# rates: a user's problem, checked at x0 before any run
# ---------------------------------------------------------------------------------------------


def _user_problem(**attrs):
    """check_problem on a Problem subclass (the default Gaussian noise) with `attrs` set on the
    instance."""

    def run(tmp):
        from lpcheck.rates import Problem
        from lpcheck.rates.problems import check_problem

        class Mine(Problem):
            name, d, f_star, sigma = "mine", 2, 0.0, 0.5
            x0 = torch.ones(2, dtype=torch.float64)

            def f(self, t):
                return (t**2).sum(-1)

            def grad(self, t):
                return 2 * t

            def L(self, p):
                return 2.0

        problem = Mine()
        for k, v in attrs.items():
            setattr(problem, k, v)
        return check_problem(problem)

    return run


case(
    "check_problem name an int (a traceback when the report describes it)",
    _user_problem(name=3),
    r"^problem.name must be a non-empty string, got 3",
    tags=("silent-before",),
)
case(
    "check_problem grad of 5 rows for 1 (a traceback from expand)",
    _user_problem(grad=lambda t: (2 * t).expand(5, -1)),
    r"^problem mine: .*grad gave shape \(5, 2\) for 1 row",
    tags=("traceback-before",),
)
case(
    "check_problem grad returns a tuple (a traceback from expand)",
    _user_problem(grad=lambda t: (2 * t, None)),
    r"^problem mine: grad must return a real floating-point torch tensor, got tuple",
    tags=("traceback-before",),
)
case(
    "check_problem grad in float16 for float64 theta (every run's precision cut)",
    _user_problem(grad=lambda t: (2 * t).half()),
    r"^problem mine: grad must return theta's dtype \(torch.float64 here\), got torch.float16",
    tags=("silent-before",),
)
case(
    "check_problem f raises at x0 (the user's exception escaped)",
    _user_problem(f=lambda t: t @ torch.ones(2)),
    r"^problem mine: f raised RuntimeError at x0",
    tags=("traceback-before",),
)
case(
    "check_problem L(3) negative (printed as L_3 = -3, used as a --p 3 run's L)",
    _user_problem(L=lambda p: 2.0 if p == 2 else -3.0),
    r"^problem mine: L\(3\) must be a finite real number > 0, got -3",
    tags=("silent-before",),
)
case(
    "check_problem L a string at p = 3 (float() read it)",
    _user_problem(L=lambda p: 2.0 if p == 2 else "2"),
    r"^problem mine: L\(3\) must be a real number > 0, got '2'",
    tags=("silent-before",),
)
case(
    "check_problem sigma negative with the default noise (reported as 'sigma = -1')",
    _user_problem(sigma=-1.0),
    r"^problem mine: sigma must be a finite real number >= 0, got -1",
    tags=("silent-before",),
)
case(
    "check_problem noise of shape (d,) (every seed drew the same noise)",
    _user_problem(noise=lambda t, gen: torch.randn(t.shape[-1], generator=gen, dtype=t.dtype)),
    r"^problem mine: noise must map \(n, d\) to \(n, d\), one independent draw per row, got "
    r"\(2,\)",
    tags=("silent-before",),
)


_PROBS = (
    "from lpcheck.rates import Problem\n\n\nclass Broken(Problem):\n    def __init__(self, d):\n"
    "        self.d = d\n\n\ndef factory():\n    return Broken(2)\n"
)


def _rates_problem(name):
    """A case body: `lpcheck rates --problem probs.py:NAME` (_PROBS) in the case's folder."""

    def run(tmp):
        import sys

        (tmp / "probs.py").write_text(_PROBS)
        remember(tmp)
        saved = sys.dont_write_bytecode
        sys.dont_write_bytecode = True
        try:
            with cwd(tmp):
                run_cli(
                    "rates", "--problem", f"{tmp / 'probs.py'}:{name}", "--out", "out", "--quiet"
                )
        finally:
            sys.dont_write_bytecode = saved

    return run


case(
    "rates --problem a class whose __init__ needs an argument (TypeError escaped)",
    _rates_problem("Broken"),
    r"--problem: .*probs.py:Broken\(\) raised TypeError: .*__init__\(\) missing 1 required",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "rates --problem a factory function ('problem function lacks `name`')",
    _rates_problem("factory"),
    r"--problem .*probs.py:factory: a function, not a problem: give a Problem subclass",
    unchanged=same_tree,
    tags=("wrong-message-before",),
)

# ---------------------------------------------------------------------------------------------
# rates.rate_study's arguments (the API the CLI calls)
# ---------------------------------------------------------------------------------------------


def _study(**kw):
    def run(tmp):
        from lpcheck.rates import make_method, make_problem, rate_study

        a = {"rule": "theorem", "T_grid": [10, 20, 40], "seeds": 3, "epochs": 2, "K": 8}
        a.update(pilot_seeds=2, checkpoint_seeds=2, checkpoint_count=2, n_boot=100, **kw)
        return quietly(rate_study, make_problem("weak"), make_method("sgd"), a.pop("rule"), **a)

    return run


case(
    "rate_study rule a list (unhashable: a TypeError)",
    _study(rule=["theorem"]),
    r"^unknown step rule \['theorem'\]; choose from theorem, sqrt, constant",
    tags=("traceback-before",),
)
case(
    "rate_study dtype a string (a TypeError from the problem's .to())",
    _study(dtype="float32"),
    r"^dtype must be a floating torch dtype",
    tags=("traceback-before",),
)
case(
    "rate_study device 'tpu' (a RuntimeError from torch.device)",
    _study(device="tpu"),
    r"^device must be cpu or cuda\[:i\], got 'tpu'",
    tags=("traceback-before",),
)
case(
    "rate_study seed 2**64 (torch's 'Overflow when unpacking long long')",
    _study(seed=2**64),
    r"^seed must be an integer in \[0, 2\*\*63 - 1\]",
    tags=("wrong-message-before",),
)
case(
    "rate_study metric a list (unhashable: a TypeError)",
    _study(metric=["dual"]),
    r"^unknown metric \['dual'\]; choose from grad_l2_sq",
    tags=("traceback-before",),
)
case(
    "rate_study progress an int (a TypeError once the runs started)",
    _study(progress=3),
    r"^progress must be None or a callable, got int",
    tags=("traceback-before",),
)


def _probe_nan(tmp):
    from lpcheck.estimate import Probe

    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    x[20, 1] = float("nan")
    net = torch.nn.Linear(4, 3)
    probe = Probe(net, (x, torch.arange(32) % 3), batch_size=8, samples=2)
    probe.measure(torch.optim.SGD(net.parameters(), lr=0.1), step=0)


case(
    "Probe data with a nan input (NonFiniteGradientError from the first full pass)",
    _probe_nan,
    r"^data: its inputs must be finite, got inf or nan in 1 example\(s\), the first at index 20",
    tags=("traceback-before",),
)
case(
    'report constants.json with complete "false" written as a string (the page said complete)',
    report("r", "--out", "o.html", setup=_pillar("estimate", _set("complete", "false"))),
    r"DIR r: constants.json's 'complete' must be bool, got str 'false'",
    unchanged=same_tree,
    tags=("silent-before",),
)
case(
    "report rates.json with complete 0 (a number where the pillar writes true or false)",
    report("r", "--out", "o.html", setup=_pillar("rates", _set("complete", 0))),
    r"DIR r: rates.json's 'complete' must be bool, got int 0",
    unchanged=same_tree,
    tags=("silent-before",),
)


# ---------------------------------------------------------------------------------------------
# Newton-Schulz step counts that only spend time: accepted, each update then looped for ever
# ---------------------------------------------------------------------------------------------


def _make(name, **hp):
    from lpcheck import methods

    return methods.make(name, **hp)


def _layerwise(**kw):
    from lpcheck.methods.norms import Layerwise

    return Layerwise(solver="newton_schulz", **kw)


case(
    "scion ns_steps 10**400", lambda tmp: _make("scion", ns_steps=HUGE), r"^ns_steps .*\[1, 1000\]"
)
case(
    "clipped ns_steps 1001", lambda tmp: _make("clipped", ns_steps=1001), r"^ns_steps .*\[1, 1000\]"
)
case("Layerwise ns_steps 10**6", lambda tmp: _layerwise(ns_steps=10**6), r"^ns_steps .*\[1, 1000\]")
