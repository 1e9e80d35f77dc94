"""eq. 27-28, eq. 43-44 and Assumption 3 at one point, from K stochastic gradients held as a (K, d)
array.

Assumption 5 (LPSGD): u_k = rescale(g_k, p, eps) (eq. 21); the alignment ratio <grad f, u_k> /
||grad f||_2^2 (eq. 27 divided by ||grad f||_2^2) and the second moment ||u_k||_p^2 (eq. 28).

Assumption 6 (LPSGDM): the expectations of eq. 43-44 are conditional on F_t, which fixes theta_t and
the optimizer's momentum buffer m_{t-1}; the only randomness left is the fresh stochastic gradient
g_t. So v_k = rescale(beta m_{t-1} + (1 - beta) g_k, p, eps) (eq. 41-42) for K fresh gradients g_k
and the one, fixed m_{t-1} read from the optimizer's state (`lpcheck.grads.flat_state`).

Assumption 3: the noise ||g_k - grad f||_q^2 in the dual norm q of p; its mean estimates the
least sigma^2 of eq. 6 at this point.

Any method in its own geometry (`statistics`, `FlatNorm`): for a direction d_k (the method's, for
the fresh gradient g_k with its state before the step fixed), a norm ||.|| and its dual ||.||_*, the
per-sample alignment <grad f, d_k> / phi with phi = ||grad f||_*^2, the second moment ||d_k||^2 and
the noise ||g_k - grad f||_*^2: Assumption 5 read in that norm (E<grad f, d> >= c1 phi, E||d||^2 <=
c2 + c3 phi), with Assumption 1's L in the same norm, which is what Theorem 1's proof needs (its
descent step uses L and ||d|| in one norm, and eq. 27-28 one measure phi of the gradient: the
theorem then bounds the mean of phi). phi = ||grad f||_*^2 makes steepest descent in that norm (d =
grad f^#) exact: c1 = 1, ||d||^2 = phi. The paper's forms (phi = ||grad f||_2^2 with the lp norm)
are kept for LPSGD/LPSGDM (`_statistics`; phi="l2" in `statistics`).

The public functions validate their input (ValueError naming the argument). `_statistics` and
`_geometry_statistics` are the same mathematics without validation or host reads, for the Probe's
per-batch loop on a device.
"""

from __future__ import annotations

import math

from lpcheck import lp

__all__ = [
    "alignment",
    "alignment_samples",
    "second_moment",
    "second_moment_samples",
    "momentum_directions",
    "momentum_alignment",
    "momentum_alignment_samples",
    "momentum_second_moment",
    "momentum_second_moment_samples",
    "noise",
    "noise_samples",
    "FlatNorm",
    "statistics",
]


def _grads(stoch_grads):
    g, torch_mode = lp._as_float_array("stoch_grads", stoch_grads)
    if g.ndim != 2 or g.shape[0] < 1 or g.shape[1] < 1:
        raise ValueError(
            f"stoch_grads must have shape (K, d) with K >= 1 and d >= 1, got {tuple(g.shape)}"
        )
    return g, torch_mode


def _vector(name, v, g, torch_mode):
    """A (d,) array of the same kind and dtype as the (K, d) array g."""
    v, v_torch = lp._as_float_array(name, v)
    if v_torch != torch_mode:
        raise ValueError(f"{name} and stoch_grads must both be numpy arrays or both torch tensors")
    if tuple(v.shape) != (g.shape[1],):
        raise ValueError(
            f"{name} must have shape (d,) = ({g.shape[1]},) to match stoch_grads, got "
            f"{tuple(v.shape)}"
        )
    return v.to(g.dtype) if torch_mode else v.astype(g.dtype)


def _full(full_grad, g, torch_mode):
    f = _vector("full_grad", full_grad, g, torch_mode)
    sq = (f * f).sum()
    if not bool(sq > 0):
        raise ValueError(
            "full_grad is zero: the alignment ratio of eq. 27 is undefined there (eq. 27 holds "
            "trivially)"
        )
    return f, sq


def _beta(beta):
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not (0 <= beta < 1):
        raise ValueError(f"beta (the momentum coefficient) must be in [0, 1), got {beta!r}")
    return float(beta)


# ---------------------------------------------------------------------------------------------
# the mathematics, unvalidated (rows of G are samples)


def _align(f, f_sq, U):
    return (U @ f) / f_sq


def _moment(U, p):
    return lp.lp_norm(U, p, axis=-1, check_finite=False) ** 2


def _mix(G, m, beta):
    """eq. 41: m_t = beta m_{t-1} + (1 - beta) g_t, one row per fresh g_t."""
    return beta * m + (1.0 - beta) * G


def _noise(f, G, p):
    return lp.lp_norm(G - f, lp.dual_exponent(p), axis=-1, check_finite=False) ** 2


def _statistics(f, f_sq, G, p, eps, m=None, beta=None):
    """Per-sample statistics of the rows of G (K, d) at a point with full gradient f,
    ||f||_2^2 = f_sq.

    Returns a dict of (K,) arrays: 'align', 'moment' (eq. 27-28), 'noise' (Assumption 3, dual norm),
    'noise_l2' (||g - grad f||_2^2) and, when m is given, 'align_m', 'moment_m' (eq. 43-44). No
    validation and no host reads: inputs must be finite (the caller checks, once).
    """
    U = lp.rescale(G, p, eps, check_finite=False)
    out = {
        "align": _align(f, f_sq, U),
        "moment": _moment(U, p),
        "noise": _noise(f, G, p),
        "noise_l2": _moment(G - f, 2.0),
    }
    if m is not None:
        V = lp.rescale(_mix(G, m, beta), p, eps, check_finite=False)
        out["align_m"] = _align(f, f_sq, V)
        out["moment_m"] = _moment(V, p)
    return out


def _p_eps(p, eps):
    lp.rho(p)  # validates p in [2, inf]
    eps = lp._real("eps", eps)
    if not (0 < eps < math.inf):
        raise ValueError(f"eps must be finite and > 0, got {eps}")


# ---------------------------------------------------------------------------------------------
# Assumption 5 (eq. 27-28)


def alignment_samples(full_grad, stoch_grads, p, eps):
    """<grad f, u_k> / ||grad f||_2^2 for each k, with u_k = rescale(g_k, p, eps) (eq. 21)."""
    g, torch_mode = _grads(stoch_grads)
    f, sq = _full(full_grad, g, torch_mode)
    return _align(f, sq, lp.rescale(g, p, eps))


def alignment(full_grad, stoch_grads, p, eps):
    """eq. 27's ratio: mean_k <grad f, u_k> / ||grad f||_2^2; c1 is a lower bound on it over the
    run."""
    return alignment_samples(full_grad, stoch_grads, p, eps).mean()


def second_moment_samples(stoch_grads, p, eps):
    """||u_k||_p^2 for each k, with u_k = rescale(g_k, p, eps)."""
    g, _ = _grads(stoch_grads)
    return _moment(lp.rescale(g, p, eps), p)


def second_moment(stoch_grads, p, eps):
    """eq. 28's left side: mean_k ||u_k||_p^2 (bounded by c2 + c3 ||grad f||_2^2)."""
    return second_moment_samples(stoch_grads, p, eps).mean()


# ---------------------------------------------------------------------------------------------
# Assumption 6 (eq. 43-44): conditional on F_t, i.e. on the momentum buffer m_{t-1}


def momentum_directions(stoch_grads, momentum_buffer, beta):
    """The K momentum states m_t = beta m_{t-1} + (1 - beta) g_k (eq. 41) for one fixed m_{t-1}."""
    g, torch_mode = _grads(stoch_grads)
    m = _vector("momentum_buffer", momentum_buffer, g, torch_mode)
    return _mix(g, m, _beta(beta))


def momentum_alignment_samples(full_grad, stoch_grads, momentum_buffer, beta, p, eps):
    """<grad f, v_k> / ||grad f||_2^2 for each k, v_k = rescale(beta m_{t-1} + (1 - beta) g_k)
    (eq. 42)."""
    return alignment_samples(
        full_grad, momentum_directions(stoch_grads, momentum_buffer, beta), p, eps
    )


def momentum_alignment(full_grad, stoch_grads, momentum_buffer, beta, p, eps):
    """eq. 43's ratio: E[<grad f, v_t> | F_t] / ||grad f||_2^2, estimated by the mean over k; c~1
    bounds it."""
    return momentum_alignment_samples(full_grad, stoch_grads, momentum_buffer, beta, p, eps).mean()


def momentum_second_moment_samples(stoch_grads, momentum_buffer, beta, p, eps):
    """||v_k||_p^2 for each k."""
    return second_moment_samples(momentum_directions(stoch_grads, momentum_buffer, beta), p, eps)


def momentum_second_moment(stoch_grads, momentum_buffer, beta, p, eps):
    """eq. 44's left side E[||v_t||_p^2 | F_t], estimated by the mean over k (bounded by c~2 + c~3
    ||grad f||_2^2)."""
    return momentum_second_moment_samples(stoch_grads, momentum_buffer, beta, p, eps).mean()


# ---------------------------------------------------------------------------------------------
# Assumption 3 (eq. 6)


def noise_samples(full_grad, stoch_grads, p):
    """||g_k - grad f||_q^2 for each k, q the dual exponent of p (Assumption 3 is stated in the dual
    norm)."""
    g, torch_mode = _grads(stoch_grads)
    f = _vector("full_grad", full_grad, g, torch_mode)
    lp.rho(p)  # the geometry's p: [2, inf]
    return _noise(f, g, p)


def noise(full_grad, stoch_grads, p):
    """eq. 6's left side E||g - grad f||_q^2, estimated by the mean over k: the least sigma^2 at
    this point."""
    return noise_samples(full_grad, stoch_grads, p).mean()


# ---------------------------------------------------------------------------------------------
# any method in its own geometry


class FlatNorm:
    """A `lpcheck.methods.Norm` on flat vectors: theta in R^d as the Probe holds it (rows of a (K,
    d) array: K vectors).

    `shapes` are the parameter shapes the flat vector concatenates (model order); a norm that is not
    a norm of the concatenation (an ellipsoid with one a per parameter, a layerwise norm) needs
    them. None (or an lp norm, which is one of the concatenation) takes the vector as one tensor.
    """

    def __init__(self, norm, shapes=None):
        from lpcheck.methods import Lp, Norm

        if not isinstance(norm, Norm):
            raise ValueError(
                f"norm must be a lpcheck.methods.Norm (see lpcheck.methods.parse_norm), got "
                f"{type(norm).__name__}"
            )
        self.base = norm
        self.shapes = None if shapes is None or isinstance(norm, Lp) else [tuple(s) for s in shapes]
        self.sizes = None if self.shapes is None else [math.prod(s) for s in self.shapes]
        self.name = repr(norm)

    def __repr__(self):
        return self.name

    def _split(self, x):
        if self.shapes is None:
            return [x]
        if x.shape[-1] != sum(self.sizes):
            raise ValueError(
                f"a vector of {x.shape[-1]} entries does not match the parameter shapes "
                f"({sum(self.sizes)} entries)"
            )
        lead = tuple(x.shape[:-1])
        return [part.reshape(lead + s) for part, s in zip(x.split(self.sizes, dim=-1), self.shapes)]

    def norm(self, x):
        """||x|| of a flat vector, or per row of a (K, d) array."""
        return self.base.norm(self._split(x), batched=x.dim() == 2)

    def dual(self, g):
        """||g||_* of a flat vector, or per row of a (K, d) array."""
        return self.base.dual(self._split(g), batched=g.dim() == 2)


def _geometry_statistics(f, phi, G, D, norm):
    """Per-sample statistics of directions D (K, d) for gradients G (K, d) at full gradient f in
    `norm` (a FlatNorm): 'align' <f, d_k>/phi, 'moment' ||d_k||^2, 'noise' ||g_k - f||_*^2,
    'noise_l2' ||g_k - f||_2^2. No validation and no host reads."""
    E = G - f
    return {
        "align": (D @ f) / phi,
        "moment": norm.norm(D) ** 2,
        "noise": norm.dual(E) ** 2,
        "noise_l2": _moment(E, 2.0),
    }


def statistics(full_grad, stoch_grads, directions, norm, shapes=None, phi="dual"):
    """Assumptions 5 and 3 per sample in any geometry: a dict of (K,) tensors 'align', 'moment',
    'noise', 'noise_l2'.

    full_grad (d,), stoch_grads and directions (K, d) torch tensors (directions[k]: the method's
    direction for stoch_grads[k] with its state fixed); norm: a lpcheck.methods.Norm or a name for
    `lpcheck.methods.parse_norm` ('l2', 'linf', 'lp:P', 'spectral', ...); shapes: the parameter
    shapes the flat vectors concatenate (needed by layerwise and ellipsoidal norms); phi: 'dual'
    (||grad f||_*^2, the measure of the gradient that Assumption 5 uses in a general norm) or 'l2'
    (||grad f||_2^2, eq. 27-28's).
    """
    from lpcheck.methods import parse_norm

    g, torch_mode = _grads(stoch_grads)
    if not torch_mode:
        raise ValueError(
            "statistics takes torch tensors (the norms of lpcheck.methods are torch functions)"
        )
    d, _ = _grads(directions)
    if tuple(d.shape) != tuple(g.shape):
        raise ValueError(
            f"directions must have the shape of stoch_grads {tuple(g.shape)}, got {tuple(d.shape)}"
        )
    f = _vector("full_grad", full_grad, g, torch_mode)
    geometry = FlatNorm(parse_norm(norm), shapes)
    if phi not in ("dual", "l2"):
        raise ValueError(f"phi must be 'dual' or 'l2', got {phi!r}")
    value = geometry.dual(f) ** 2 if phi == "dual" else (f * f).sum()
    if not bool(value > 0):
        raise ValueError("full_grad is zero: the alignment ratio is undefined there")
    return _geometry_statistics(f, value, g, d.to(g.dtype), geometry)
