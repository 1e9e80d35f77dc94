"""eq. 27 and eq. 28 at one point, from K stochastic gradients held as a (K, d) array."""

from __future__ import annotations

from lpcheck import lp


def _grads(stoch_grads):
    g, torch_mode = lp._as_float_array("stoch_grads", stoch_grads)
    if g.ndim != 2 or g.shape[0] < 1 or g.shape[1] < 1:
        raise ValueError(f"stoch_grads must have shape (K, d) with K >= 1 and d >= 1, got {tuple(g.shape)}")
    return g, torch_mode


def alignment_samples(full_grad, stoch_grads, p, eps):
    """<grad f, u_k> / ||grad f||_2^2 for each k, with u_k = rescale(g_k, p, eps) (eq. 21)."""
    g, torch_mode = _grads(stoch_grads)
    f, f_torch = lp._as_float_array("full_grad", full_grad)
    if f_torch != torch_mode:
        raise ValueError("full_grad and stoch_grads must both be numpy arrays or both torch tensors")
    if tuple(f.shape) != (g.shape[1],):
        raise ValueError(f"full_grad must have shape (d,) = ({g.shape[1]},) to match stoch_grads, got {tuple(f.shape)}")
    f = f.to(g.dtype) if torch_mode else f.astype(g.dtype)
    sq = (f * f).sum()
    if not bool(sq > 0):
        raise ValueError("full_grad is zero: the alignment ratio of eq. 27 is undefined there (eq. 27 holds trivially)")
    return (lp.rescale(g, p, eps) @ f) / sq


def alignment(full_grad, stoch_grads, p, eps):
    """eq. 27's ratio: mean_k <grad f, u_k> / ||grad f||_2^2; c1 is a lower bound on it over the run."""
    return alignment_samples(full_grad, stoch_grads, p, eps).mean()


def second_moment_samples(stoch_grads, p, eps):
    """||u_k||_p^2 for each k, with u_k = rescale(g_k, p, eps)."""
    g, _ = _grads(stoch_grads)
    return lp.lp_norm(lp.rescale(g, p, eps), p, axis=1) ** 2


def second_moment(stoch_grads, p, eps):
    """eq. 28's left side: mean_k ||u_k||_p^2 (bounded by c2 + c3 ||grad f||_2^2)."""
    return second_moment_samples(stoch_grads, p, eps).mean()
