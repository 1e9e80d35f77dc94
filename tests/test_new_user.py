"""What a new user brings to `lpcheck estimate` and the Probe, and what went wrong with it.

Each test here was seen failing on the code before its fix:
- a parameter that gets no gradient (an unused branch) was measured as if its gradient were 0: the
  direction kept its momentum and coupled weight decay and the step pair moved it, where torch's
  step leaves a parameter whose .grad is None alone;
- a model that draws random numbers in its forward (dropout) made f a different function at each
  pass: the smoothness pair compared two losses under different masks;
- K = --samples above the number of distinct mini-batches repeated blocks as independent samples;
- an optimizer that cannot step on the model (SparseAdam) failed mid-run with a traceback, a loss
  that broadcast (b, 1) outputs against (b,) targets gave a wrong loss silently, and DDP stopped at
  the second step on a model with an unused parameter;
- a float64 parameter beside float32 ones stopped the layer's Adam/RMSprop inside torch; a dict of
  outputs (default loss) and a Dataset of dict items stopped inside torch or the probe's own code;
  a broadcasting loss was measured silently by the Probe (the CLI refused it);
- a weight decay declared decoupled but ignored by the step, and lion_pytorch's decoupled decay
  (lr wd / init_lr), put lambda theta into the measured direction silently;
- Hessian products in train mode wrote to buffers other than BatchNorm's, and stopped inside torch
  on attention (no second derivative in the fused kernels);
- a sqrt-rule rates study of an ascending method, and a black box at lr 0 (a warm-up), were
  refused without saying why or what to do.
"""

import copy
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from lpcheck import cli, grads, methods
from lpcheck.estimate import directions
from lpcheck.estimate.probe import Probe
from lpcheck.optim import LPSGDM

N, B = 48, 8


class _Net(torch.nn.Module):
    def __init__(self, unused: bool):
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Linear(6, 8)
        self.head = torch.nn.Linear(8, 3)
        if unused:  # a branch the forward never takes: its parameters never get a gradient
            self.b = torch.nn.Linear(6, 3)

    def forward(self, x):
        return self.head(torch.tanh(self.a(x)))


def _data():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(N, 6, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0.3).long()


OPTIMIZERS = {
    "sgd-nesterov-wd": lambda ps: torch.optim.SGD(
        ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1
    ),
    "adam-wd": lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1),
    "adamw-amsgrad": lambda ps: torch.optim.AdamW(ps, lr=0.01, amsgrad=True, weight_decay=0.1),
    "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.9, weight_decay=0.1),
    "adagrad (black box)": lambda ps: torch.optim.Adagrad(ps, lr=0.1, weight_decay=0.1),
    "adamax (black box)": lambda ps: torch.optim.Adamax(ps, lr=0.01, weight_decay=0.1),
    "radam decoupled (black box)": lambda ps: torch.optim.RAdam(
        ps, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True
    ),
    "lpsgdm": lambda ps: LPSGDM(ps, lr=0.01, p=4.0, weight_decay=0.1, momentum=0.9),
}


def _trained(unused, make):
    net = _Net(unused)
    opt = make(list(net.parameters()))
    x, y = _data()
    for t in range(3):  # a state to measure at: momentum, moments, step counts
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(
            net(x[8 * t : 8 * t + 8]), y[8 * t : 8 * t + 8]
        ).backward()
        opt.step()
    return net, opt


# Adam's and RMSprop's ellipsoid weighs a coordinate with v = 0 by eps, so their records cannot
# tell; the step test below holds them (and these) to torch's own step
VISIBLE = [n for n in OPTIMIZERS if not n.startswith(("adam-", "adamw", "rmsprop"))]


@pytest.mark.parametrize("name", VISIBLE)
def test_a_parameter_without_gradient_is_measured_as_the_optimizer_leaves_it(name):
    """The same run with and without an unused branch: every measured number agrees, since torch's
    step skips a parameter whose .grad is None (no momentum, no decay, no move)."""
    make = OPTIMIZERS[name]
    recs = []
    for unused in (False, True):
        net, opt = _trained(unused, make)
        probe = Probe(net, _data(), batch_size=B, samples=4, seed=1, step_pairs=2)
        recs.append(probe.measure(opt, step=3))
    plain, with_branch = recs
    assert with_branch["loss"] == pytest.approx(plain["loss"], rel=1e-6)
    for key, values in plain["samples"].items():
        assert with_branch["samples"][key] == pytest.approx(values, rel=2e-6, abs=1e-12), key
    assert len(with_branch["pairs"]) == len(plain["pairs"]) == 2
    for a, b in zip(plain["pairs"], with_branch["pairs"]):
        for key in ("dist_p", "quad_xy", "grad_ratio"):
            assert b[key] == pytest.approx(a[key], rel=2e-6), key


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_the_step_pair_is_the_optimizers_own_step(name):
    """The step the probe takes for a block's gradient (its direction and the group's lr and decay,
    the parameters without gradient left alone) is the step torch takes with that block's .grad."""
    net, opt = _trained(True, OPTIMIZERS[name])
    params = list(net.parameters())
    x, y = _data()
    loss = torch.nn.functional.cross_entropy(net(x[40:48]), y[40:48])
    parts = torch.autograd.grad(loss, params, allow_unused=True)
    missing = tuple(i for i, t in enumerate(parts) if t is None)
    assert missing == (4, 5)  # the unused branch's weight and bias
    g = grads.flatten(torch.zeros_like(p) if t is None else t for p, t in zip(params, parts))
    theta = grads.flat_params(params)
    plan = directions.plan(opt, params)
    moved = plan.step(theta, plan.direction(g, theta, missing), missing)
    twin = copy.deepcopy(net)
    other = OPTIMIZERS[name](list(twin.parameters()))
    other.load_state_dict(copy.deepcopy(opt.state_dict()))
    torch.nn.functional.cross_entropy(twin(x[40:48]), y[40:48]).backward()
    other.step()
    want = grads.flat_params(list(twin.parameters()))
    assert torch.allclose(moved, want, rtol=0, atol=1e-6 * float(theta.abs().max()))
    assert torch.equal(moved[-21:], theta[-21:])  # the unused branch (6 x 3 + 3) did not move


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1),
        lambda ps: torch.optim.Adagrad(ps, lr=0.1, weight_decay=0.1),  # the black box
    ],
    ids=["adam", "adagrad"],
)
def test_an_optimizer_over_all_parameters_of_a_partly_frozen_model(make):
    """torch's idiom `Adam(model.parameters())` on a model with frozen parameters (torch's step
    skips them) was refused ('must hold exactly the model's trainable parameters'); it measures what
    the optimizer over the trainable ones alone does."""
    records = []
    for everything in (True, False):
        net = _Net(False)
        net.a.requires_grad_(False)
        ps = (
            list(net.parameters())
            if everything
            else [p for p in net.parameters() if p.requires_grad]
        )
        probe = Probe(net, _data(), batch_size=B, samples=3, seed=1)
        records.append(probe.measure(make(ps), step=0))
    assert (
        records[0]["samples"] == records[1]["samples"]
        and records[0]["pairs"] == records[1]["pairs"]
    )


@pytest.mark.parametrize("name", ["Adafactor", "Muon"])
def test_torchs_own_decoupled_decay_is_kept_out_of_the_direction(name):
    """torch.optim.Adafactor and Muon decay theta (1 - lr lambda) apart from their update (and by
    default: weight_decay 1e-2 and 0.1), as AdamW does; the black box counted lambda theta as part
    of their direction."""
    if not hasattr(torch.optim, name):
        pytest.skip(f"torch.optim.{name} is not in this torch")
    cls = getattr(torch.optim, name)
    torch.manual_seed(0)
    theta = [torch.randn(4, 3), torch.randn(3, 5)]
    grads_ = [torch.randn(4, 3), torch.randn(3, 5)]
    d = {}
    for lam in (0.0, 0.3):
        params = [torch.nn.Parameter(t.clone()) for t in theta]
        opt = cls(params, lr=0.02, weight_decay=lam)
        for p, g in zip(params, grads_):  # a state to measure at (it does not depend on lambda)
            p.grad = g.clone()
        opt.step()
        d[lam] = methods.BlackBox(opt).update(grads_, params=theta)[0]  # at one point for both
    for a, b in zip(d[0.0], d[0.3]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


class _SparseEmbedding(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(10, 6, sparse=True)
        self.head = torch.nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.emb(x).mean(1))


def test_sparse_gradients_are_measured_as_the_dense_vectors_they_are():
    """Embedding(sparse=True) with torch SGD (momentum: a sparse buffer): the probe flattened the
    sparse gradient and stopped inside torch ('reshape is not implemented for sparse tensors')."""
    net = _SparseEmbedding()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 10, (N, 4), generator=g)
    y = x[:, 0] % 3
    for t in range(3):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(
            net(x[8 * t : 8 * t + 8]), y[8 * t : 8 * t + 8]
        ).backward()
        opt.step()
    assert opt.state[net.emb.weight]["momentum_buffer"].is_sparse
    rec = Probe(net, (x, y), batch_size=B, samples=4, seed=1).measure(opt, step=3)
    assert rec["method"] == "heavyball" and all(
        v == v and abs(v) < float("inf") for vs in rec["samples"].values() for v in vs
    )


class _Dropout(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.head = torch.nn.Linear(6, 32).double(), torch.nn.Linear(32, 3).double()

    def forward(self, x):
        return self.head(torch.nn.functional.dropout(torch.tanh(self.a(x)), 0.5, self.training))


def test_dropout_keeps_f_one_function_of_theta():
    """A tiny step (lr 1e-6, float64): f(y) - f(x) - <grad f(x), y - x> is of order ||y - x||^2, so
    the pair's curvature ratio is the network's (well below 100). Under a fresh dropout mask per
    pass the difference is the masks' noise, of order 1e-2, and the ratio was ~1e9."""
    net = _Dropout()
    opt = torch.optim.SGD(net.parameters(), lr=1e-6)
    x, y = _data()
    probe = Probe(net, (x.double(), y), batch_size=B, samples=3, seed=2, step_pairs=1)
    rec = probe.measure(opt, step=0)
    (pair,) = [p for p in rec["pairs"] if p["kind"] == "step"]
    assert abs(pair["quad_xy"]) < 100 and abs(pair["quad_yx"]) < 100, pair
    again = Probe(net, (x.double(), y), batch_size=B, samples=3, seed=2, step_pairs=1)
    again = again.measure(opt, step=0)
    assert again["loss"] == rec["loss"] and again["samples"] == rec["samples"]


class _NoisyDataset(torch.utils.data.Dataset):
    """A map-style Dataset with a random transform (input noise from torch's generator)."""

    def __init__(self):
        self.x, self.y = _data()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return (self.x[i] + 0.3 * torch.randn(6)).double(), self.y[i]


def test_a_datasets_random_transform_keeps_f_one_function_of_theta():
    """The transform's noise is block j's own at every point, as dropout's masks: a tiny step's
    curvature ratio stays the model's (it was ~1e10 with fresh noise per pass)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    opt = torch.optim.SGD(net.double().parameters(), lr=1e-6)
    rec = Probe(net, _NoisyDataset(), batch_size=B, samples=3, seed=2).measure(opt, step=0)
    (pair,) = [p for p in rec["pairs"] if p["kind"] == "step"]
    assert abs(pair["quad_xy"]) < 100 and abs(pair["quad_yx"]) < 100, pair


def test_a_half_precision_step_pair_is_measured_where_the_parameters_landed():
    """In bfloat16 a step of lr 1e-6 rounds away: the parameters do not move, so there is no pair.
    The pair used to take the unrounded point for y while f and grad f were those of x, and gave a
    curvature ratio of -2 <g, d> / ||d||^2 / lr, about -1e6."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    net = net.bfloat16()
    x, y = _data()
    opt = torch.optim.SGD(net.parameters(), lr=1e-6)
    rec = Probe(net, (x.bfloat16(), y), batch_size=B, samples=3, seed=1).measure(opt, step=0)
    assert [p for p in rec["pairs"] if p["kind"] == "step"] == []
    opt = torch.optim.SGD(net.parameters(), lr=0.5)  # a step bfloat16 resolves: one pair, finite
    rec = Probe(net, (x.bfloat16(), y), batch_size=B, samples=3, seed=1).measure(opt, step=0)
    (pair,) = [p for p in rec["pairs"] if p["kind"] == "step"]
    assert 0 < pair["dist_p"] and abs(pair["quad_xy"]) < 1e3


def test_more_samples_than_distinct_batches_is_refused_by_name():
    net = _Net(False)
    with pytest.raises(ValueError, match=r"samples \(K = 7\) must be <= .* 48 // 8 = 6"):
        Probe(net, _data(), batch_size=B, samples=7)
    assert Probe(net, _data(), batch_size=B, samples=6).samples == 6  # every block once: allowed


@pytest.mark.parametrize(
    "cls,match",
    [
        (torch.optim.SparseAdam, r"SparseAdam.step\(\) raised RuntimeError .*dense gradients"),
        (torch.optim.LBFGS, r"LBFGS.step\(\) failed without a closure"),
    ],
)
def test_an_optimizer_the_black_box_cannot_step_is_refused_before_any_draw(cls, match):
    """SparseAdam raised a RuntimeError from inside torch after the full pass and the K draws had
    moved the probe's generator; now a ValueError naming it, with the probe as it was."""
    net = _Net(False)
    probe = Probe(net, _data(), batch_size=B, samples=4)
    state = probe.generator.get_state()
    with pytest.raises(ValueError, match=match):
        probe.measure(cls(list(net.parameters()), lr=0.01), step=0)
    assert torch.equal(probe.generator.get_state(), state) and probe.records == []


# -- the command line, as a user runs it -----------------------------------------------------------

USER = textwrap.dedent("""
    import torch


    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.unused = torch.nn.Linear(8, 3), torch.nn.Linear(8, 3)
            self.frozen = torch.nn.Linear(8, 8)
            self.frozen.requires_grad_(False)

        def forward(self, x):
            return self.a(self.frozen(x))


    def branchy():
        return Branchy()


    def regression():
        return torch.nn.Linear(8, 1)


    def load():
        g = torch.Generator().manual_seed(1)
        x = torch.randn(64, 8, generator=g)
        return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


    def load_regression():
        x, _ = load()
        return x, 2 * x[:, 0]  # (n,) targets for a model with (n, 1) outputs


    def load_column():
        x, _ = load()
        return x, 2 * x[:, :1]


    def mse(outputs, targets):
        return torch.nn.functional.mse_loss(outputs, targets)
""")

ARGS = [
    "estimate",
    "--data",
    "usermod:load",
    "--lr",
    "0.01",
    "--epochs",
    "2",
    "--batch-size",
    "16",
    "--checkpoints",
    "2",
    "--samples",
    "3",
    "--resamples",
    "100",
    "--threads",
    "1",
    "--quiet",
]


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "usermod.py").write_text(USER)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _refused(capsys, *argv):
    assert cli.main([*ARGS, *argv]) == 2
    return capsys.readouterr().err


def test_an_optimizer_that_cannot_step_is_refused_before_any_work(project, capsys):
    err = _refused(
        capsys, "--model", "usermod:branchy", "--optimizer", "torch.optim:SparseAdam", "--out", "o"
    )
    assert "--optimizer torch.optim:SparseAdam: one step" in err and "dense gradients" in err
    assert not (project / "o").exists()


def test_a_loss_that_broadcasts_outputs_against_targets_is_refused(project, capsys):
    argv = ["--model", "usermod:regression", "--data", "usermod:load_regression"]
    err = _refused(capsys, *argv, "--loss", "usermod:mse", "--optimizer", "sgd", "--out", "o")
    assert "--loss / --data" in err and "broadcast" in err and "(16, 1)" in err
    assert not (project / "o").exists()


def test_a_loss_with_no_gradient_at_all_is_refused_by_name(project, capsys):
    """Cross-entropy over one output column is 0 whatever the weights: the probe used to stop at its
    first checkpoint with 'the full gradient is zero', naming no option."""
    argv = ["--model", "usermod:regression", "--data", "usermod:load_column", "--out", "o"]
    err = _refused(capsys, *argv)
    assert "--loss / --model: the gradient of cross-entropy" in err and "exactly 0" in err


def test_more_samples_than_batches_is_refused_on_the_command_line(project, capsys):
    err = _refused(capsys, "--model", "usermod:branchy", "--samples", "5", "--out", "o")
    assert "--samples (K = 5) must be <= " in err and "64 // 16 = 4" in err


@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_torchrun_with_an_unused_parameter(project):
    """DDP without find_unused_parameters stops at the second step ('Expected to have finished
    reduction'); with it, two gloo processes measure what one does."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    argv = [*ARGS, "--model", "usermod:branchy", "--optimizer", "torch.optim:Adagrad"]
    argv += ["--weight-decay", "0.1"]
    one = subprocess.run(
        [sys.executable, "-P", "-m", "lpcheck", *argv, "--out", "one"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
        + ["--standalone", "-m", "lpcheck", *argv, "--out", "two"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = (json.loads((project / d / "constants.json").read_text()) for d in ("one", "two"))
    for ra, rb in zip(a["records"], b["records"], strict=True):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5)
        for key, values in ra["samples"].items():
            assert rb["samples"][key] == pytest.approx(values, rel=1e-4, abs=1e-8), key


class _MixedDtype(torch.nn.Module):
    """A float64 parameter beside float32 ones (a float64 scale, a float32 buffer)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.head = torch.nn.Linear(6, 8), torch.nn.Linear(8, 3)
        self.scale = torch.nn.Parameter(torch.full((8,), 1.1, dtype=torch.float64))
        self.register_buffer("shift", torch.full((8,), 0.1))

    def forward(self, x):
        return self.head(torch.tanh((self.a(x).double() * self.scale + self.shift).float()))


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1),
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, centered=True, momentum=0.9),
    ],
    ids=["adam", "rmsprop-centered"],
)
def test_a_float64_parameter_beside_float32_ones(make):
    """The flat gradient of a model with one float64 parameter is float64 throughout, and the
    layer's Adam/RMSprop stopped inside torch ('expected dtype float for `end` but got dtype
    double') on the float32 moments of the other parameters; the step it measures is torch's."""
    net = _MixedDtype()
    opt = make(list(net.parameters()))
    x, y = _data()
    for t in range(3):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(
            net(x[8 * t : 8 * t + 8]), y[8 * t : 8 * t + 8]
        ).backward()
        opt.step()
    params = list(net.parameters())
    loss = torch.nn.functional.cross_entropy(net(x[40:48]), y[40:48])
    g, theta = grads.flat_grad(loss, params), grads.flat_params(params)
    plan = directions.plan(opt, params)
    moved = plan.step(theta, plan.direction(g, theta))
    twin = copy.deepcopy(net)
    other = make(list(twin.parameters()))
    other.load_state_dict(copy.deepcopy(opt.state_dict()))
    torch.nn.functional.cross_entropy(twin(x[40:48]), y[40:48]).backward()
    other.step()
    want = grads.flat_params(list(twin.parameters()))
    assert torch.allclose(moved, want, rtol=0, atol=1e-5 * float((want - theta).abs().max()))
    rec = Probe(net, _data(), batch_size=B, samples=3, seed=1).measure(opt, step=3)
    assert rec["source"] == "layer" and len(rec["samples"]["align"]) == 3
    rec = Probe(net, _data(), batch_size=B, samples=3).measure(
        methods.make("adam"), step=0, lr=0.01
    )
    assert all(v == v for v in rec["samples"]["align"])


class _IgnoresDecay(torch.optim.Optimizer):
    """A user's momentum step that declares decoupled weight decay and never applies it."""

    decoupled_weight_decay = True

    def __init__(self, params, lr=0.01, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    m = self.state[p].setdefault("m", torch.zeros_like(p))
                    p.add_(m.mul_(0.9).add_(p.grad), alpha=-group["lr"])  # no decay


class _HonoursDecay(_IgnoresDecay):
    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.mul_(1 - group["lr"] * group["weight_decay"])
        super().step()


@pytest.mark.parametrize(
    "make,refused",
    [
        (lambda ps, wd: _IgnoresDecay(ps, lr=0.05, weight_decay=wd), True),
        (lambda ps, wd: _HonoursDecay(ps, lr=0.05, weight_decay=wd), False),
        (lambda ps, wd: torch.optim.NAdam(ps, weight_decay=wd, decoupled_weight_decay=True), False),
    ],
    ids=["ignores", "honours", "nadam-decoupled"],
)
def test_a_weight_decay_declared_decoupled_but_ignored_is_refused(make, refused):
    """The black box keeps a decoupled decay out of the direction; a class that declares it and
    never decays was measured as if its direction held -lambda theta: the same trajectory as at
    weight_decay = 0 (the decay is ignored) gave other numbers, silently, under weight_decay 0.1."""
    records = []
    for wd in (0.0, 0.1):
        net = _Net(False)
        opt = make(list(net.parameters()), wd)
        x, y = _data()
        for t in range(2):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(
                net(x[8 * t : 8 * t + 8]), y[8 * t : 8 * t + 8]
            ).backward()
            opt.step()
        probe = Probe(net, _data(), batch_size=B, samples=3, seed=1)
        state = probe.generator.get_state()
        if wd and refused:
            with pytest.raises(ValueError, match=r"_IgnoresDecay: param group\(s\) \[0\] declare"):
                probe.measure(opt, step=2)
            assert torch.equal(probe.generator.get_state(), state) and probe.records == []
            return
        records.append(probe.measure(opt, step=2))
    assert [r["weight_decay"] for r in records] == [0.0, 0.1]  # kept out of the direction


class _DictOut(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Linear(6, 3)

    def forward(self, x):
        return {"logits": self.a(x)}


def test_a_model_with_dict_outputs_needs_its_loss_and_gets_it():
    """A dict of outputs stopped inside torch's cross_entropy (TypeError) at the first block; now
    a ValueError naming loss_fn, with the probe as it was, and with a loss that takes the dict
    the probe measures it as the plain model."""
    net = _DictOut()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    probe = Probe(net, _data(), batch_size=B, samples=3, seed=1)
    state = probe.generator.get_state()
    with pytest.raises(ValueError, match=r"the model returns a dict: give loss_fn="):
        probe.measure(opt, step=0)
    assert torch.equal(probe.generator.get_state(), state) and probe.records == []

    def loss(out, y):
        return torch.nn.functional.cross_entropy(out["logits"], y)

    rec = Probe(net, _data(), batch_size=B, samples=3, seed=1, loss_fn=loss).measure(opt, step=0)
    plain = Probe(net.a, _data(), batch_size=B, samples=3, seed=1)
    assert (
        rec["samples"]
        == plain.measure(torch.optim.SGD(net.a.parameters(), lr=0.1), step=0)["samples"]
    )


def test_a_loss_that_broadcasts_is_refused_by_the_probe_too():
    """mse_loss on (b, 1) outputs and (b,) targets is a b x b loss (torch only warns): the Probe
    measured it silently, where `lpcheck estimate` refuses it."""
    net = torch.nn.Linear(6, 1)
    x, _ = _data()
    mse = torch.nn.functional.mse_loss
    with pytest.raises(ValueError, match=r"loss_fn broadcast the model's outputs \(8, 1\)"):
        Probe(net, (x, x[:, 0]), batch_size=B, samples=3, loss_fn=mse).measure(
            torch.optim.SGD(net.parameters(), lr=0.1), step=0
        )
    rec = Probe(net, (x, x[:, :1]), batch_size=B, samples=3, loss_fn=mse).measure(
        torch.optim.SGD(net.parameters(), lr=0.1), step=0
    )
    assert rec["loss"] > 0


class _RunningAverage(torch.nn.Module):
    """A user's module that tracks a running mean of its input in train mode (a buffer)."""

    def __init__(self, n):
        super().__init__()
        self.register_buffer("avg", torch.zeros(n))

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.avg.lerp_(x.mean(0), 0.1)
        return x


class _Stateful(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.head = torch.nn.Linear(6, 8), torch.nn.Linear(8, 3)
        self.inorm = torch.nn.InstanceNorm1d(8, affine=True, track_running_stats=True)
        self.track, self.bn = _RunningAverage(8), torch.nn.BatchNorm1d(8)

    def forward(self, x):
        h = self.inorm(self.a(x).unsqueeze(-1).expand(-1, -1, 4)).mean(-1)
        return self.head(torch.tanh(self.bn(self.track(h))))


@pytest.mark.parametrize("retain", [True, False])
def test_curvature_in_train_mode_leaves_every_buffer_as_it_was(retain):
    """Hessian products in train mode kept BatchNorm's running statistics but wrote to every other
    buffer a forward updates (InstanceNorm's with track_running_stats, a user's running average);
    the Probe restores them all, and now so does the HessianOperator."""
    from lpcheck.curvature import HessianOperator

    net = _Stateful().train()
    x, y = _data()
    before = copy.deepcopy(net.state_dict())
    op = HessianOperator(
        net,
        lambda m, b: torch.nn.functional.cross_entropy(m(b[0]), b[1]),
        [(x[:16], y[:16]), (x[16:32], y[16:32])],
        mode="train",
        retain=retain,
    )
    v = torch.randn(op.dim, generator=torch.Generator().manual_seed(1))
    first = op(v)
    assert torch.allclose(op(v), first, rtol=1e-5, atol=1e-7)  # one function, product after product
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert net.training


class _Attention(torch.nn.Module):
    """A tiny transformer on int tokens: an Embedding, one encoder layer (scaled dot-product
    attention), a mean over positions."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(10, 8)
        self.enc = torch.nn.TransformerEncoderLayer(
            8, 2, 16, dropout=0.0, activation="gelu", batch_first=True
        )  # smooth: a central difference of the gradient is then its Hessian product
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.enc(self.emb(x)).mean(1))


def test_hessian_products_through_attention():
    """torch's fused attention kernels have no second derivative: a Hessian product through
    TransformerEncoderLayer stopped inside torch ('derivative for
    aten::_scaled_dot_product_flash_attention_for_cpu_backward is not implemented'). Through the
    math kernel it is the central difference of the gradient."""
    from lpcheck.curvature import HessianOperator

    net = _Attention().double()
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 10, (16, 5), generator=g)
    batches = [(x, x[:, 0] % 3)]

    def loss(m, b):
        return torch.nn.functional.cross_entropy(m(b[0]), b[1])

    op = HessianOperator(net, loss, batches, mode="eval")
    v = torch.randn(op.dim, generator=g, dtype=torch.float64)
    hv = op(v)
    params = list(net.parameters())
    theta, h = grads.flat_params(params), 1e-5
    diff = []
    for sign in (1, -1):
        grads.set_flat_params(params, theta + sign * h * v)
        diff.append(grads.flat_grad(loss(net, batches[0]), params))
    grads.set_flat_params(params, theta)
    fd = (diff[0] - diff[1]) / (2 * h)
    assert torch.allclose(hv, fd, rtol=0, atol=1e-6 * float(fd.abs().max()))


class _DictDataset(torch.utils.data.Dataset):
    """A Dataset whose items are dicts, as many libraries' are."""

    def __init__(self):
        self.x, self.y = _data()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"inputs": self.x[i], "label": self.y[i]}


def test_a_dataset_of_dicts_is_refused_by_name():
    """Its two keys unpacked as (input, target), strings, and the probe stopped in its own code
    with AttributeError: 'str' object has no attribute 'to'."""
    net = _Net(False)
    probe = Probe(net, _DictDataset(), batch_size=B, samples=2)
    state = probe.generator.get_state()
    with pytest.raises(
        ValueError, match=r"\(input, target\) pairs, got a dict with keys \['inputs', "
    ):
        probe.measure(torch.optim.SGD(net.parameters(), lr=0.1), step=0)
    assert torch.equal(probe.generator.get_state(), state) and probe.records == []


def test_lion_pytorchs_own_decoupled_decay_is_lr_wd_over_init_lr():
    """lion_pytorch's Lion(decoupled_weight_decay=True) decays theta by lr wd / init_lr; the black
    box took lambda = wd, so its sign direction carried (wd / init_lr - wd) theta. Now the
    direction is the sign of its update (every |d_i| = 1) and the step pair is Lion's own step."""
    lion = pytest.importorskip("lion_pytorch")
    net = _Net(False)

    def make(ps):
        return lion.Lion(ps, lr=1e-3, weight_decay=0.1, decoupled_weight_decay=True)

    opt = make(list(net.parameters()))
    x, y = _data()
    torch.nn.functional.cross_entropy(net(x[:8]), y[:8]).backward()
    opt.step()
    params = list(net.parameters())
    g = grads.flat_grad(torch.nn.functional.cross_entropy(net(x[8:16]), y[8:16]), params)
    theta = grads.flat_params(params)
    plan = directions.plan(opt, params)
    d = plan.direction(g, theta)
    assert torch.allclose(d.abs(), torch.ones_like(d), rtol=0, atol=1e-6)
    twin = copy.deepcopy(net)
    other = make(list(twin.parameters()))
    other.load_state_dict(copy.deepcopy(opt.state_dict()))
    torch.nn.functional.cross_entropy(twin(x[8:16]), y[8:16]).backward()
    other.step()
    assert torch.allclose(
        plan.step(theta, d), grads.flat_params(list(twin.parameters())), atol=1e-7
    )
    rec = Probe(net, _data(), batch_size=B, samples=3).measure(opt, step=1)
    assert rec["weight_decay"] == pytest.approx(0.1 / 1e-3)


ASCENT = """
import torch


class Ascent(torch.optim.Optimizer):
    '''A user's SGD with a sign error: it climbs.'''

    def __init__(self, params, lr=0.1):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=group["lr"])
"""


def test_a_sqrt_study_without_a_step_says_how_to_give_one(tmp_path, monkeypatch):
    """A method with a sign error has c1 < 0, so eq. 32 gives no step; a 'sqrt' study without lr
    takes its C from eq. 32 and said only 'eq. 32/47 has no step', as if the sqrt rule could not
    run at all. Now it says that --lr C runs it; with lr given it runs and reports c1 < 0."""
    from lpcheck import rates

    (tmp_path / "ascent.py").write_text(ASCENT)
    monkeypatch.chdir(tmp_path)
    method = rates.resolve_method("ascent:Ascent")
    problem = rates.make_problem("logsum")
    kw = dict(seeds=3, K=8, pilot_seeds=2, checkpoint_seeds=2, checkpoint_count=3, n_boot=100)
    out = rates.rate_study(problem, method, "sqrt", [20, 40], **kw)
    assert out["verdict"] == "inconclusive" and out["runs"] == []
    assert "c1 = -" in out["reason"] and "give --lr C (lr=C)" in out["reason"]
    out = rates.rate_study(problem, method, "sqrt", [20, 40], lr=0.5, **kw)
    assert len(out["runs"]) == 2 and max(r["constants"]["c1"] for r in out["runs"]) < 0


def test_a_warm_up_from_lr_0_is_named_for_the_black_box():
    """LambdaLR(t / 5) gives lr = 0 at step 0: Adam (a layer method) is measured there, NAdam (the
    black box, whose direction is its step / lr) was refused with 'lr must be a finite real number
    > 0, got 0.0', naming no reason; now the refusal says why and what to do."""
    records = []
    for cls in (torch.optim.Adam, torch.optim.NAdam):
        net = _Net(False)
        opt = cls(net.parameters(), lr=0.01)
        torch.optim.lr_scheduler.LambdaLR(opt, lambda t: t / 5)
        probe = Probe(net, _data(), batch_size=B, samples=3)
        if cls is torch.optim.Adam:
            records.append(probe.measure(opt, step=0))
            continue
        with pytest.raises(
            ValueError,
            match=r"lr must be > 0 for the black box, got 0 \(a warm-up's first step\?\)",
        ):
            probe.measure(opt, step=0)
        assert probe.records == []
    assert records[0]["lr"] == 0 and records[0]["pairs"] == []
