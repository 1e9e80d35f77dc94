"""Bad input a new user brings: their own model, data, loss and optimizer (`lpcheck estimate`, the
Probe, `lpcheck rates`), each refused by name before any work, the case's folder left as it was.

The user's code is one small module written into the case's folder and named by its path, as a user
names theirs (tests/test_new_user.py runs the same models through whole runs).
"""

from __future__ import annotations

import sys

import torch

from corpus import Case
from corpus import run_lpcheck as run_cli
from corpus._tiny import isolated, remember, same_tree

AREA = "user"
CASES: list[Case] = []


def case(name, run, match, raises=(ValueError,), unchanged=None, tags=()):
    CASES.append(Case(AREA, name, run, match, raises=raises, unchanged=unchanged, tags=tags))


USER = """
import torch


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def regression():
    return torch.nn.Linear(8, 1)


class Pair(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.a(x), x.sum()


def pair():
    return Pair()


class Bag(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 8, sparse=True)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.emb(x).mean(1))


def bag():
    return Bag()


def tokens():
    x = torch.randint(0, 10, (64, 4), generator=torch.Generator().manual_seed(1))
    return x, x[:, 0] % 3


def data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 8, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


class DictItems(torch.utils.data.Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        return {"x": torch.full((8,), float(i)), "y": i % 3}


def dict_items():
    return DictItems()


def regression_data():
    x, _ = data()
    return x, 2 * x[:, 0]


def regression_column():
    x, _ = data()
    return x, 2 * x[:, :1]


def mse(outputs, targets):
    return torch.nn.functional.mse_loss(outputs, targets)


class IgnoresDecay(torch.optim.Optimizer):
    decoupled_weight_decay = True

    def __init__(self, params, lr=0.01, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
"""

BASE = [
    "--lr",
    "0.01",
    "--batch-size",
    "16",
    "--epochs",
    "1",
    "--checkpoints",
    "1",
    "--samples",
    "2",
    "--resamples",
    "100",
    "--threads",
    "1",
    "--quiet",
]


def estimate(model, data, *options):
    """A case body: `lpcheck estimate` on the user's module MODEL and DATA (names in USER) with
    `options`; nothing may be written."""

    def run(tmp):
        mod = tmp / "usermod.py"
        mod.write_text(USER)
        argv = ["estimate", "--model", f"{mod}:{model}", "--data", f"{mod}:{data}", *BASE]
        argv += [o.replace("{mod}", str(mod)) for o in options] + ["--out", str(tmp / "out")]
        remember(tmp)
        saved = sys.dont_write_bytecode
        sys.dont_write_bytecode = True  # the folder must stay as it was
        try:
            with isolated():
                run_cli(*argv)
        finally:
            sys.dont_write_bytecode = saved

    return run


case(
    "estimate --samples above the distinct mini-batches (64 // 16 = 4)",
    estimate("mlp", "data", "--samples", "5"),
    r"--samples \(K = 5\) must be <= the number of distinct mini-batches, .* = 4",
    unchanged=same_tree,
    tags=("silent-before",),
)
case(
    "estimate --optimizer torch.optim:SparseAdam (dense gradients)",
    estimate("mlp", "data", "--optimizer", "torch.optim:SparseAdam"),
    r"--optimizer torch.optim:SparseAdam: one step .* RuntimeError.*: SparseAdam does not support "
    r"dense gradients",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "estimate --optimizer torch.optim:LBFGS (its step needs a closure)",
    estimate("mlp", "data", "--optimizer", "torch.optim:LBFGS"),
    r"--optimizer torch.optim:LBFGS: its step needs a closure",
    unchanged=same_tree,
)
case(
    "estimate --loss mse on (b, 1) outputs and (b,) targets (a broadcast loss)",
    estimate("regression", "regression_data", "--loss", "{mod}:mse", "--optimizer", "sgd"),
    r"--loss / --data: .*mse broadcast the model's outputs \(16, 1\) against the targets \(16,\)",
    unchanged=same_tree,
    tags=("silent-before",),
)
case(
    "estimate --optimizer adam on sparse gradients (Embedding(sparse=True))",
    estimate("bag", "tokens", "--optimizer", "adam"),
    r"--optimizer adam: one step .* Adam does not support sparse gradients",
    unchanged=same_tree,
    tags=("traceback-before",),
)
case(
    "estimate a model returning a tuple with the default loss",
    estimate("pair", "data"),
    r"--loss / --data: .* outputs tuple .* give --loss MODULE:FUNCTION",
    unchanged=same_tree,
)
case(
    "estimate --data a Dataset whose items are dicts",
    estimate("mlp", "dict_items"),
    r"--data: .* the Dataset's items must be \(input, target\) pairs, got a dict with keys "
    r"\['x', 'y'\]",
    unchanged=same_tree,
    tags=("wrong-message-before",),
)
case(
    "estimate --optimizer IgnoresDecay (declares decoupled weight decay, never decays)",
    estimate("mlp", "data", "--optimizer", "{mod}:IgnoresDecay", "--weight-decay", "0.1"),
    r"--optimizer .*IgnoresDecay: .*param group\(s\) \[0\] declare decoupled weight decay "
    r"\(weight_decay = \[0.1\]\), but its step is not theta \(1 - lr weight_decay\)",
    unchanged=same_tree,
    tags=("silent-before",),
)


case(
    "estimate cross-entropy (the default) on a model with one output column",
    estimate("regression", "regression_column"),
    r"--loss / --model: the gradient of cross-entropy .* is exactly 0",
    unchanged=same_tree,
    tags=("late-before",),
)


def _probe(samples, batch_size=16):
    def run(tmp):
        from lpcheck.estimate import Probe

        torch.manual_seed(0)
        net = torch.nn.Linear(8, 3)
        x = torch.randn(64, 8)
        Probe(net, (x, torch.zeros(64, dtype=torch.long)), batch_size=batch_size, samples=samples)

    return run


case(
    "Probe samples=16 (the default) from 64 // 16 = 4 blocks",
    _probe(16),
    r"samples \(K = 16\) must be <= the number of distinct mini-batches, .* = 64 // 16 = 4",
    tags=("silent-before",),
)
case(
    "Probe samples=5 from 64 // 16 = 4 blocks",
    _probe(5),
    r"samples \(K = 5\) must be <= .* = 4",
    tags=("silent-before",),
)


def _probe_measure(cls):
    def run(tmp):
        from lpcheck.estimate import Probe

        torch.manual_seed(0)
        net = torch.nn.Linear(8, 3)
        data = (torch.randn(64, 8), torch.zeros(64, dtype=torch.long))
        Probe(net, data, batch_size=16, samples=2).measure(cls(list(net.parameters())), step=0)

    return run


case(
    "Probe.measure(torch.optim.SparseAdam) on dense gradients",
    _probe_measure(torch.optim.SparseAdam),
    r"SparseAdam.step\(\) raised RuntimeError on a copy: SparseAdam does not support dense",
    tags=("traceback-before",),
)
case(
    "Probe.measure(torch.optim.LBFGS) (its step needs a closure)",
    _probe_measure(torch.optim.LBFGS),
    r"LBFGS.step\(\) failed without a closure",
)


class _Outputs(torch.nn.Module):
    """A model returning a dict of outputs, or (b, 1) outputs for (b,) targets."""

    def __init__(self, kind):
        super().__init__()
        self.kind, self.a = kind, torch.nn.Linear(8, 3 if kind == "dict" else 1)

    def forward(self, x):
        return {"logits": self.a(x)} if self.kind == "dict" else self.a(x)


def _probe_loss(kind):
    def run(tmp):
        from lpcheck.estimate import Probe

        torch.manual_seed(0)
        net = _Outputs(kind)
        x = torch.randn(64, 8)
        if kind == "dict":
            data, loss = (x, torch.zeros(64, dtype=torch.long)), None
        else:
            data, loss = (x, x[:, 0]), torch.nn.functional.mse_loss
        probe = Probe(net, data, batch_size=16, samples=2, loss_fn=loss)
        probe.measure(torch.optim.SGD(net.parameters(), lr=0.1), step=0)

    return run


case(
    "Probe.measure on a model returning a dict, with the default loss",
    _probe_loss("dict"),
    r"cross-entropy \(the default loss_fn\) on the model's outputs dict .* raised TypeError: .*"
    r"\(the model returns a dict: give loss_fn=a function that takes it",
    tags=("traceback-before",),
)
case(
    "Probe.measure with mse_loss on (b, 1) outputs and (b,) targets (a broadcast loss)",
    _probe_loss("column"),
    r"loss_fn broadcast the model's outputs \(16, 1\) against the targets \(16,\)",
    tags=("silent-before",),
)


def _probe_dict_dataset(tmp):
    from lpcheck.estimate import Probe

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, i):
            return {"x": torch.full((8,), float(i)), "y": i % 3}

    torch.manual_seed(0)
    net = torch.nn.Linear(8, 3)
    Probe(net, Items(), batch_size=16, samples=2).measure(torch.optim.SGD(net.parameters()), step=0)


case(
    "Probe.measure on a Dataset whose items are dicts",
    _probe_dict_dataset,
    r"data: the Dataset's items must be \(input, target\) pairs, got a dict with keys \['x', 'y'\]",
    tags=("traceback-before",),
)
