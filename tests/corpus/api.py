"""Bad input to lpcheck's Python API: each case one bad argument, refused by name before any work."""

from __future__ import annotations

import math

from corpus import Case

CASES: list = []


# estimate / Probe ---------------------------------------------------------------------------------------------
# Probe's and fit_run's arguments (lpcheck.estimate), best_c2_c3 and the no-cap form of lpcheck.bounds.


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
    """A probe measured with a bad loss bound; `unchanged` checks that the refusal left it as it was."""

    def __init__(self, **kw):
        self.kw = kw

    def run(self, tmp):
        self.probe = _probe(loss_fn=_shifted, **self.kw)
        self.state = self.probe.generator.get_state()
        self.probe.measure(_optimizer(self.probe.module), step=0)

    def unchanged(self, tmp):
        import torch

        assert self.probe.records == [], "a refused measurement was recorded"
        assert torch.equal(self.probe.generator.get_state(), self.state), "the probe's generator moved"


def _record(step=0, loss=2.0, lr=0.01, grad_sq=1.0):
    return {"step": step, "epoch": 1, "p": 4.0, "lr": lr, "K": 2, "loss": loss, "grad_sq": grad_sq, "grad_norm_q": 1.0,
            "samples": {"align": [0.8, 0.9], "moment": [2.0, 2.5], "noise": [1.0, 1.1], "noise_l2": [0.5, 0.5]},
            "pairs": []}


def _fit(records=None, **kw):
    from lpcheck.estimate.fit import fit_run

    return fit_run(records or [_record(0), _record(5, lr=0.02)], **{"T": 10, "resamples": 100, **kw})


def _best(**kw):
    from lpcheck.estimate.fit import best_c2_c3

    return best_c2_c3([1.0, 2.0], [3.0, 4.0], **{"c1": 0.5, "L": 10.0, "delta": 1.0, "T": 100, **kw})


_below, _negative = _Measured(loss_lower_bound=-5.0), _Measured()

CASES += [
    Case("api", "Probe loss_lower_bound nan", lambda tmp: _probe(loss_lower_bound=math.nan),
         r"loss_lower_bound must be a real number"),
    Case("api", "Probe loss_lower_bound inf", lambda tmp: _probe(loss_lower_bound=math.inf),
         r"loss_lower_bound must be a finite real number"),
    Case("api", "Probe loss_lower_bound a string", lambda tmp: _probe(loss_lower_bound="0"),
         r"loss_lower_bound must be a real number"),
    Case("api", "Probe seed negative", lambda tmp: _probe(seed=-1), r"seed must be an integer >= 0"),
    Case("api", "Probe seed not an integer", lambda tmp: _probe(seed=1.5), r"seed must be an integer"),
    Case("api", "Probe loss_fn not callable", lambda tmp: _probe(loss_fn="mse"), r"loss_fn must be a callable"),
    Case("api", "Probe measure: a loss below the stated loss_lower_bound", _below.run,
         r"loss_lower_bound = -5 is above the measured loss", unchanged=_below.unchanged),
    Case("api", "Probe measure: a negative loss and no loss_lower_bound", _negative.run,
         r"negative.*loss_lower_bound", unchanged=_negative.unchanged),
    Case("api", "Probe measure: param groups disagree on eps",
         lambda tmp: (lambda p: p.measure(_optimizer(p.module, [
             {"params": list(p.module.parameters())[:2]},
             {"params": list(p.module.parameters())[2:], "eps": 1e-6}]), step=0))(_probe()),
         r"param groups disagree on eps"),
    Case("api", "fit_run T 0", lambda tmp: _fit(T=0), r"T must be an integer >= 1"),
    Case("api", "fit_run T a string", lambda tmp: _fit(T="10"), r"T must be an integer"),
    Case("api", "fit_run confidence nan", lambda tmp: _fit(confidence=math.nan), r"confidence must be a real number"),
    Case("api", "fit_run confidence 1", lambda tmp: _fit(confidence=1.0), r"confidence must be a finite real number in \(0, 1\)"),
    Case("api", "fit_run resamples 10", lambda tmp: _fit(resamples=10), r"resamples must be an integer >= 100"),
    Case("api", "fit_run seed negative", lambda tmp: _fit(seed=-3), r"seed must be an integer >= 0"),
    Case("api", "fit_run lr_used negative", lambda tmp: _fit(lr_used=-0.1), r"lr_used must be a finite real number >= 0"),
    Case("api", "fit_run lr_used nan", lambda tmp: _fit(lr_used=math.nan), r"lr_used must be a real number"),
    Case("api", "fit_run lr_used a string", lambda tmp: _fit(lr_used="0.1"), r"lr_used must be the run's peak lr"),
    Case("api", "fit_run lr_used below a checkpoint's lr", lambda tmp: _fit(lr_used=0.015),
         r"lr_used gives a largest lr of 0.015, but the lr at a checkpoint was 0.02"),
    Case("api", "fit_run lr_used a sequence of the wrong length", lambda tmp: _fit(lr_used=[0.02] * 3),
         r"lr_used as a sequence must hold the lr of each of the T = 10 steps, got 3"),
    Case("api", "fit_run lr_used a schedule giving nan", lambda tmp: _fit(lr_used=lambda t: math.nan),
         r"lr_used\(0\) must be a real number"),
    Case("api", "fit_run lr_used a schedule giving inf", lambda tmp: _fit(lr_used=lambda t: math.inf),
         r"lr_used\(0\) must be a finite real number"),
    Case("api", "fit_run loss_lower_bound nan", lambda tmp: _fit(loss_lower_bound=math.nan),
         r"loss_lower_bound must be a real number"),
    Case("api", "fit_run loss_lower_bound above a loss", lambda tmp: _fit(loss_lower_bound=2.5),
         r"loss_lower_bound = 2.5 is above the loss measured at step 0"),
    Case("api", "fit_run loss_lower_bound equal to f(theta_0)",
         lambda tmp: _fit([_record(0, loss=2.0), _record(5, loss=3.0, lr=0.02)], loss_lower_bound=2.0),
         r"loss_lower_bound = 2 equals the loss at the first checkpoint"),
    Case("api", "fit_run a negative loss and no loss_lower_bound",
         lambda tmp: _fit([_record(0, loss=-1.0), _record(5, loss=-2.0, lr=0.02)]),
         r"negative.*pass loss_lower_bound"),
    Case("api", "best_c2_c3 delta 0", lambda tmp: _best(delta=0.0), r"delta must be a finite real number > 0"),
    Case("api", "best_c2_c3 c1 nan", lambda tmp: _best(c1=math.nan), r"c1 must be a real number"),
    Case("api", "best_c2_c3 L negative", lambda tmp: _best(L=-1.0), r"L must be a finite real number > 0"),
    Case("api", "best_c2_c3 T below 1", lambda tmp: _best(T=0.5), r"T must be a finite real number >= 1"),
    Case("api", "bounds.theorem1_bound_no_cap c2 0",
         lambda tmp: __import__("lpcheck.bounds").bounds.theorem1_bound_no_cap(0.5, 0.0, 1.0, 1.0, 10),
         r"c2 must be > 0 when there is no step cap"),
]
