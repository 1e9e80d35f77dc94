"""Assumption 5/6 constants measured along simulated trajectories, and the Theorem 1/2 bound check.

At each checkpoint (theta_t, and m_{t-1} for momentum, with the active p) we draw K stochastic
gradients from the problem's exact noise model and evaluate, with `lpcheck.estimate`:

- the alignment ratio of eq. 27 (eq. 43 for momentum: the directions are rescale(beta m_{t-1} +
  (1 - beta) g_k), the conditional law given F_t) -> c1 is its minimum over checkpoints;
- the second moment of eq. 28 (eq. 44) -> the exact (c2, c3) frontier of `lpcheck.estimate.fit`.

The alignment ratio is a mean of K samples; where ||grad f|| is tiny it is dominated by sampling
noise (its standard error grows like 1/||grad f||), and where the transformed direction is biased it
may be near zero or negative. A checkpoint whose ratio is not resolved by K draws (standard error
above `resolve` times the ratio) is measured again with `refine` * K more draws; it counts for c1
only if then resolved (the others are counted and reported, not hidden).

eq. 10's direction (method 'steepest') is not the paper's eq. 21, but Lemma 1 and the proof of
Theorem 1 use nothing about u_t beyond Assumption 5, so the same measurement and bound apply to it.
Any other method (`measure_method`: a layer method, a torch optimizer class) is measured the same
way in its
geometry (`lpcheck.rates.optimizers`): u_k its direction for a fresh gradient with its state before
the step fixed, ||grad f||^2 replaced by phi = ||grad f||_*^2 of that norm; the bound then holds for
the mean of phi."""

from __future__ import annotations

import math

import numpy as np
import torch

from lpcheck import bounds, estimate, lp
from lpcheck.estimate.fit import best_c2_c3, c2_for
from lpcheck.rates.optimizers import geometry, sample_directions

__all__ = ["measure", "measure_method", "Constants", "theorem_step", "bound_check"]


class Constants:
    """Checkpoint measurements: alignment (mean, standard error), moment, ||grad f||^2, p, t.

    c1: min of the resolved alignment ratios (nan if none resolved). c1_upper (in summary): the
    least mean + 2 standard errors over all checkpoints; a c1 valid along the run cannot exceed it,
    so c1_upper well below c1 says that unresolved checkpoints (ratios near zero) put
    Assumption 5/6 in doubt. The frontier data are (grad_sq, moment) at every checkpoint.
    """

    def __init__(self, alignment, alignment_se, moment, grad_sq, p, t, resolve, samples, refined=0):
        self.alignment, self.alignment_se = np.asarray(alignment), np.asarray(alignment_se)
        self.moment, self.grad_sq = np.asarray(moment), np.asarray(grad_sq)
        self.p, self.t, self.resolve, self.samples = list(p), list(t), float(resolve), int(samples)
        self.refined = int(refined)
        self.resolved = self.alignment_se <= self.resolve * np.abs(self.alignment)
        self.c1 = float(self.alignment[self.resolved].min()) if self.resolved.any() else math.nan

    def summary(self) -> dict:
        """JSON-ready: a value with no number (no checkpoint, none resolved) is None, with a
        `*_reason`."""
        n = int(self.alignment.size)
        out = {
            "c1": self.c1 if self.resolved.any() else None,
            "checkpoints": n,
            "resolved": int(self.resolved.sum()),
            "samples_per_checkpoint": self.samples,
            "refined": self.refined,
            "alignment_min_all": float(self.alignment.min()) if n else None,
            # no c1 above this is consistent with every checkpoint (one-sided ~97.5% at each)
            "c1_upper": float((self.alignment + 2 * self.alignment_se).min()) if n else None,
            "moment_max": float(self.moment.max()) if n else None,
        }
        if not n:
            out["reason"] = "no checkpoint with a nonzero, finite gradient: nothing was measured"
        elif out["c1"] is None:
            out["c1_reason"] = (
                "no checkpoint resolves the alignment ratio (standard error <= "
                f"{self.resolve:g} x |ratio|) with the draws taken"
            )
        return out


def _draw(problem, method, theta, momentum, K, gen):
    """K pre-transform samples per checkpoint, (n, K, d): g_k, or beta m_{t-1} + (1 - beta) g_k
    (eq. 23)."""
    n, d = theta.shape
    g = problem.stoch_grad(theta.repeat_interleave(K, 0), gen).reshape(n, K, d)
    if method.momentum > 0:
        g = method.momentum * momentum[:, None, :] + (1 - method.momentum) * g
    return g


def _per_sample(method, full, samples, p, eps, sq):
    """Per sample at one checkpoint: the eq. 27 ratio <grad f, u_k>/||grad f||^2 and ||u_k||_p^2
    (eq. 28)."""
    if method.kind == "steepest":
        u = -lp.steepest_descent(samples, p, lr=1.0, axis=1)
        return (u @ full) / sq, lp.lp_norm(u, p, axis=1) ** 2
    return estimate.alignment_samples(full, samples, p, eps), estimate.second_moment_samples(
        samples, p, eps
    )


def measure(
    problem, method, theta, momentum, ps, ts, *, K=512, eps=1e-8, seed=12345, resolve=0.1, refine=16
) -> Constants:
    """Measure eq. 27/28 (eq. 43/44) at checkpoints theta (n, d) with K noise draws each.

    `momentum` (n, d) holds m_{t-1} for momentum methods (None otherwise); `ps` the active p per
    checkpoint. A checkpoint whose alignment ratio is not resolved by K draws gets `refine` * K more
    (a ratio near zero, or below it, is exactly where Assumption 5/6 is in danger). Checkpoints
    with a zero full gradient are skipped (eq. 27 holds there trivially).
    """
    gen = torch.Generator(device=theta.device).manual_seed(seed)
    with torch.no_grad():
        full = problem.grad(theta)
        g = _draw(problem, method, theta, momentum, K, gen)

    def samples(i, draws):
        sq = float(full[i] @ full[i])
        return _per_sample(method, full[i], draws, ps[i], eps, sq)

    def more(i, k):
        with torch.no_grad():
            return _draw(
                problem,
                method,
                theta[i : i + 1],
                None if momentum is None else momentum[i : i + 1],
                k,
                gen,
            )[0]

    sq = [float(f @ f) for f in full]
    return _collect(g, sq, samples, more, ps, ts, K, resolve, refine)


def measure_method(
    problem, method, theta, states, epochs, ts, *, lr, K=512, seed=12345, resolve=0.1, refine=16
) -> Constants:
    """The same measurement for any other method (`lpcheck.rates.optimizers`): at checkpoint i
    (theta (n, d), its state `states[i]` before the step fixed, its epoch), the direction u_k for
    each of K fresh gradients, the ratio <grad f, u_k> / ||grad f||_*^2 and ||u_k||^2 in the
    method's geometry (its norm, or l2 where it has none lpcheck can use: `geometry`), as the
    Probe measures any optimizer. `lr`: the step the run used (a torch optimizer's direction is
    read from its step)."""
    geo = geometry(method, problem.d)
    gen = torch.Generator(device=theta.device).manual_seed(seed)
    with torch.no_grad():
        full = problem.grad(theta)
        g = _draw_plain(problem, theta, K, gen)
        phi = [float(geo.norm.dual([f])) ** 2 for f in full]

    def samples(i, draws):
        with torch.no_grad():
            u = sample_directions(method, theta[i], states[i], draws, lr=lr, epoch=epochs[i])
        return (u @ full[i]) / phi[i], geo.norm.norm([u], batched=True) ** 2

    def more(i, k):
        with torch.no_grad():
            return _draw_plain(problem, theta[i : i + 1], k, gen)[0]

    return _collect(g, phi, samples, more, [geo.p] * len(phi), ts, K, resolve, refine)


def _draw_plain(problem, theta, K, gen):
    n, d = theta.shape
    return problem.stoch_grad(theta.repeat_interleave(K, 0), gen).reshape(n, K, d)


def _collect(g, phi, samples, more, ps, ts, K, resolve, refine) -> Constants:
    """Per checkpoint i with phi_i = ||grad f||^2 > 0 (finite): mean and standard error of the
    alignment ratio and the mean moment over the draws g[i], with refine * K more where the ratio
    is not resolved."""
    align, se, moment, grad_sq, keep_p, keep_t, refined = [], [], [], [], [], [], 0
    for i in range(g.shape[0]):
        if not (phi[i] > 0 and math.isfinite(phi[i])):  # a zero gradient satisfies eq. 27 trivially
            continue
        a, m2 = samples(i, g[i])
        if refine > 1 and not float(a.std()) / math.sqrt(a.numel()) <= resolve * abs(
            float(a.mean())
        ):
            a2, m22 = samples(i, more(i, K * refine))
            a, m2 = torch.cat([a, a2]), torch.cat([m2, m22])
            refined += 1
        align.append(float(a.mean()))
        se.append(float(a.std()) / math.sqrt(a.numel()))
        moment.append(float(m2.mean()))
        grad_sq.append(phi[i])
        keep_p.append(ps[i])
        keep_t.append(ts[i])
    return Constants(align, se, moment, grad_sq, keep_p, keep_t, resolve, K, refined)


def theorem_step(constants: Constants, L, delta, T) -> dict:
    """eq. 32 (eq. 47 with the tilde constants) at T: the frontier pair minimising the bound.

    Returns best_c2_c3's dict (c2, c3, eta, bound, branch, step_cap: None with step_cap_reason when
    the best pair is the limit c3 -> 0, the step then eq. 32's balanced branch) plus c1.
    """
    if not constants.c1 > 0:
        what = (
            "no checkpoint resolves the alignment ratio"
            if math.isnan(constants.c1)
            else (
                f"c1 = {constants.c1:.4g}: Assumption 5/6 alignment not positive "
                "on the measured trajectory"
            )
        )
        raise ValueError(f"{what}; eq. 32/47 has no step")
    best = best_c2_c3(constants.grad_sq, constants.moment, constants.c1, L, delta, T)
    return dict(best, c1=constants.c1)


def bound_check(observed, eta, constants: Constants, L, delta, T) -> dict:
    """observed / eq. 31 (eq. 46) at the step eta that was used, with the measured constants.

    Any eta satisfies eq. 30 with c3 = c1/(L eta); the frontier's least c2 for that c3 gives the
    smallest right-hand side the measurements allow at this eta. ratio <= 1: the bound holds.
    """
    c1 = constants.c1
    if not c1 > 0:
        note = (
            "no checkpoint resolves the alignment ratio: c1 is not measured"
            if math.isnan(c1)
            else (
                f"eq. 27/43 fails: alignment {c1:.3g} <= 0 at a resolved checkpoint, "
                "no c1 > 0 exists"
            )
        )
        return {
            "c1": None if math.isnan(c1) else c1,
            "c2": None,
            "c3": None,
            "rhs": None,
            "ratio": None,
            "note": note,
            "status": "unresolved" if math.isnan(c1) else "alignment <= 0",
        }
    c3 = c1 / (L * eta)
    c2 = c2_for(c3, constants.grad_sq, constants.moment)
    rhs = bounds.theorem1_rhs(eta, c1, c2, L, delta, T)
    return {
        "c1": c1,
        "c2": c2,
        "c3": c3,
        "rhs": rhs,
        "ratio": float(observed) / rhs,
        "note": "",
        "status": "ok",
    }
