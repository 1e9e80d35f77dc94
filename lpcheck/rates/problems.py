"""Synthetic problems with known constants, for checking the rate of Theorems 1-2.

A problem is one small class (subclass `Problem`). It knows, for parameters held one row per seed
(`theta` of shape (n, d)):

- `d`, the start `x0` (shape (d,)), `f(theta)` -> (n,), `grad(theta)` -> (n, d) (the full gradient),
- `f_star`: inf f (Assumption 4), or a lower bound on it where no closed form exists (then delta =
  f(x0) - f_star over-estimates f(x0) - inf f and the Theorem 1/2 bound, which grows with delta,
  stays valid),
- `L(p)`: a constant for which Assumption 1 (eq. 4) holds in the lp norm, p in [2, inf]; `L(2)` is
  the l2 smoothness,
- its noise: `stoch_grad(theta, generator, full_grad)` -> (n, d), one independent draw per row given
  that row (Assumption 2: unbiased). The default adds `noise(theta, generator)` to the full
  gradient; the default noise is Gaussian with standard deviation `sigma` per coordinate.

Every tensor attribute is moved by `to(device, dtype)`, so a problem written for the CPU runs on
CUDA.

Smoothness in lp, the one formula used throughout: if f(y) - f(x) - <grad f(x), y - x>
<= 1/2 sum_i D_i (y_i - x_i)^2 for a vector D >= 0 (a diagonal upper bound on the curvature),
then by Hoelder with exponents p/2 and its dual p/(p-2),
    sum_i D_i v_i^2 <= ||D||_{p/(p-2)} ||v||_p^2,
so eq. 4 holds with L_p = ||D||_{p/(p-2)} (p = 2: max D; p = inf: sum D). It is attained by
v_i^2 proportional to D_i^(2/(p-2)), so it is the exact constant whenever the diagonal bound itself
is attained (diagonal quadratics, sum log(1 + x^2) at x = 0).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from lpcheck import checks, lp

__all__ = [
    "Problem",
    "Quadratic",
    "LogSum",
    "Logistic",
    "PROBLEMS",
    "make_problem",
    "check_problem",
    "diagonal_smoothness",
]


def diagonal_smoothness(D, p) -> float:
    """L_p = ||D||_{p/(p-2)} for a diagonal curvature bound D >= 0, p in [2, inf] (module
    docstring).

    p = 2 gives max D (the l2 constant), p = inf gives sum D.
    """
    p = checks.as_number("p", p, what="a real number in [2, inf] (lp smoothness, Assumption 1)")
    if p < 2:
        raise ValueError(f"p must be in [2, inf] for lp smoothness (Assumption 1), got {p}")
    D = _vector("D", D)
    if bool((D < 0).any()):
        raise ValueError("D must be >= 0: a curvature bound (its norm would drop the sign)")
    r = math.inf if p == 2 else (1.0 if p == math.inf else p / (p - 2))
    return float(lp.lp_norm(np.asarray(D.cpu()), r))


def _sigma(sigma) -> float:
    sigma = checks.as_number("sigma", sigma, what="finite and >= 0")
    if not (sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be finite and >= 0, got {sigma}")
    return sigma


def _vector(name, value, d=None) -> torch.Tensor:
    """`value` as a finite float64 vector (of length d if given), or ValueError naming it."""
    t = torch.from_numpy(checks.real_array(name, value, noun="a vector"))
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(
            f"{name} must be a 1-D vector of at least one entry, got shape {tuple(t.shape)}"
        )
    if d is not None and t.numel() != d:
        raise ValueError(
            f"{name} has length {t.numel()}: the problem's vectors must be vectors of one length d "
            f"= {d}"
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got inf or nan entries")
    return t


class Problem:
    """Base class of a synthetic problem (see the module docstring for the protocol).

    A subclass sets `name`, `d`, `x0`, `f_star` (and `sigma` for the default Gaussian noise) and
    defines `f`, `grad` and `L`; it overrides `noise` or `stoch_grad` for another noise model.
    `describe()` says what it is in the report.
    """

    name = "problem"
    sigma = 0.0

    def f(self, theta):
        raise NotImplementedError

    def grad(self, theta):
        raise NotImplementedError

    def L(self, p) -> float:
        raise NotImplementedError

    def noise(self, theta, generator):
        """Gaussian noise with standard deviation `sigma` per coordinate, one draw per row."""
        z = torch.randn(theta.shape, generator=generator, device=theta.device, dtype=theta.dtype)
        return z.mul_(self.sigma)

    def stoch_grad(self, theta, generator, full_grad=None):
        """g = grad f(theta) + noise: unbiased (Assumption 2); `full_grad` saves recomputing grad
        f."""
        if full_grad is None:
            full_grad = self.grad(theta)
        return full_grad + self.noise(theta, generator)

    def noise_description(self) -> str:
        return (
            f"Gaussian, sigma = {self.sigma:g} per coordinate"
            if self.sigma
            else "none (deterministic)"
        )

    def describe(self) -> str:
        return (self.__doc__ or self.name).strip().splitlines()[0]

    def to(self, device=None, dtype=None):
        """A copy with every tensor attribute on `device`; floating ones in `dtype`."""
        new = copy.copy(self)
        for key, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(
                    new,
                    key,
                    value.to(device=device, dtype=dtype if value.is_floating_point() else None),
                )
        return new


class Quadratic(Problem):
    """Diagonal quadratic f = 1/2 sum_i lambda_i (theta_i - c_i)^2 (eq. 12 shifted), f* = 0.

    Hessian diag(lambda), so L_p = ||lambda||_{p/(p-2)} exactly (L_2 = max lambda, L_inf = sum
    lambda).
    Noise: Gaussian with standard deviation `sigma` per coordinate, or Student-t with `nu` degrees
    of freedom (`nu` an integer >= 3: finite variance, scaled so that the variance is sigma^2;
    moments of order >= nu are infinite)."""

    def __init__(self, lam, center, x0, sigma=1.0, nu=None, name="quadratic", doc=None):
        self.lam = _vector("lam", lam)
        self.d = int(self.lam.numel())
        self.center = _vector("center", center, self.d)
        self.x0 = _vector("x0", x0, self.d)
        if not bool((self.lam >= 0).all()) or not bool(self.lam.max() > 0):
            raise ValueError("lam must be >= 0 with at least one entry > 0")
        sigma = _sigma(sigma)
        if nu is not None:
            nu = checks.integer("nu (Student-t degrees of freedom)", nu, low=3)
        self.sigma, self.nu, self.name, self.f_star = sigma, nu, name, 0.0
        self._doc = doc

    def f(self, theta):
        return 0.5 * ((theta - self.center) ** 2 * self.lam).sum(-1)

    def grad(self, theta):
        return (theta - self.center) * self.lam

    def L(self, p) -> float:
        return diagonal_smoothness(self.lam, p)

    def noise(self, theta, generator):
        if self.nu is None:
            return super().noise(theta, generator)
        # t_nu = z / sqrt(chi2_nu / nu), chi2_nu a sum of nu squared normals; Var t_nu = nu / (nu -
        # 2)
        nu = int(self.nu)
        z = torch.randn(
            (nu + 1, *theta.shape), generator=generator, device=theta.device, dtype=theta.dtype
        )
        t = z[0] * torch.rsqrt(z[1:].square().mean(0))
        return t.mul_(self.sigma * math.sqrt((nu - 2) / nu))

    def noise_description(self) -> str:
        if self.nu is not None and self.sigma:
            return f"Student-t, nu = {self.nu}, variance sigma^2 = {self.sigma**2:g} per coordinate"
        return super().noise_description()

    def describe(self) -> str:
        return self._doc or f"diagonal quadratic, d = {self.d}"


class LogSum(Problem):
    """f = sum_i log(1 + theta_i^2): nonconvex (|theta_i| > 1), bounded gradient |df/dtheta_i| <= 1,
    f* = 0.

    The second derivative of log(1 + x^2) is 2 (1 - x^2) / (1 + x^2)^2, in [-1/4, 2] with its
    maximum 2 at x = 0; so D = 2 (all ones) bounds the curvature from above and L_p = 2 d^((p-2)/p),
    attained at x = 0 for small steps with |v_i| all equal (eq. 4 is one-sided: negative curvature
    does not count)."""

    def __init__(self, x0, sigma=1.0, name="logsum"):
        self.x0 = _vector("x0", x0)
        self.d = int(self.x0.numel())
        self.sigma, self.name, self.f_star = _sigma(sigma), name, 0.0

    def f(self, theta):
        return torch.log1p(theta**2).sum(-1)

    def grad(self, theta):
        return 2 * theta / (1 + theta**2)

    def L(self, p) -> float:
        return diagonal_smoothness(torch.full((self.d,), 2.0, dtype=torch.float64), p)

    def describe(self) -> str:
        return f"sum_i log(1 + theta_i^2), d = {self.d} (nonconvex, bounded gradient)"


def _softplus(x):
    """log(1 + e^x) to full precision (torch's softplus returns x itself beyond x = 20: off by
    e^-20).

    logaddexp(x, 0) = max(x, 0) + log1p(e^-|x|) in value, and its backward is sigmoid(x) everywhere.
    Written as clamp(x, min=0) + log1p(exp(-|x|)), autograd took the subgradients of clamp and |.|
    at x = 0, whose convention changed between torch 2.13 and 2.14: the gradient at theta = 0 was
    0.5 in one and 0 in the other."""
    return torch.logaddexp(x, torch.zeros((), dtype=x.dtype, device=x.device))


class Logistic(Problem):
    """Finite sum: logistic loss on synthetic data plus a nonconvex regulariser, mini-batch noise.

    f(theta) = (1/n) sum_i log(1 + exp(-y_i <a_i, theta>)) + lam sum_j theta_j^2 / (1 + theta_j^2),
    with labels y_i in {-1, +1}; the stochastic gradient is the gradient of the loss on `batch`
    samples drawn uniformly with replacement (unbiased; genuine mini-batch noise) plus the
    regulariser's gradient.

    Smoothness: sigma'(z) <= 1/4 and (x^2/(1+x^2))'' = 2 (1 - 3x^2)/(1 + x^2)^3 <= 2, both attained
    at theta = 0, so M = A^T A / (4n) + 2 lam I bounds the Hessian from above and equals it at 0:
    L_p = sup_v v^T M v / ||v||_p^2 (the p -> q operator norm of M). L_2 = lambda_max(M) exactly;
    for p > 2 that norm has no closed form and L(p) returns the least of three upper bounds:
    lambda_max(M) d^((p-2)/p); ||r||_{p/(p-2)} with r_j = sum_k |M_jk| (|v_j v_k| <= (v_j^2 +
    v_k^2)/2); and (1/(4n)) sum_i ||a_i||_q^2 + 2 lam d^((p-2)/p) (Hoelder on each <a_i, v>).

    f_star: the convex part's minimum min_theta (1/n) sum_i log(1 + exp(-y_i <a_i, theta>)), found
    by Newton's method (the regulariser is >= 0, so this is a lower bound on inf f; the gap is at
    most the regulariser at that minimiser, stored as `f_star_gap`)."""

    def __init__(
        self,
        n=256,
        d=16,
        batch=8,
        lam=0.01,
        flip=0.1,
        scale_range=(3.0, 0.3),
        x0=None,
        seed=0,
        name="logistic",
    ):
        n, d = checks.integer("n", n, low=2), checks.integer("d", d, low=1)
        batch = checks.integer("batch", batch, low=1, high=n)  # 0 would drop the loss's gradient
        lam = checks.real("lam", lam, low=0.0)  # < 0 breaks f_star as a lower bound
        flip = checks.probability("flip", flip, open_high=False)
        seed = checks.integer("seed", seed, low=0)
        if not isinstance(scale_range, (tuple, list)) or len(scale_range) != 2:
            raise ValueError(f"scale_range must be two numbers > 0, got {scale_range!r}")
        scale_range = [
            checks.real(f"scale_range[{i}]", v, low=0.0, low_open=True)
            for i, v in enumerate(scale_range)
        ]
        rng = np.random.default_rng(seed)
        scales = np.geomspace(scale_range[0], scale_range[1], d)
        A = rng.standard_normal((n, d)) * scales  # anisotropic features
        w = rng.standard_normal(d)
        y = np.sign(A @ w + 1e-12)
        y[
            rng.random(n) < flip
        ] *= -1  # label noise: no interpolation, the noise persists at the optimum
        self.A = torch.as_tensor(A)
        self.y = torch.as_tensor(y)
        self.lam, self.batch, self.n, self.d, self.name = (
            float(lam),
            int(batch),
            int(n),
            int(d),
            name,
        )
        self.x0 = _vector("x0", np.zeros(d) if x0 is None else x0, d)
        self.f_star, self.f_star_gap = self._convex_minimum()

    def _loss(self, theta, A, y):
        return _softplus(-y * (theta @ A.T)).mean(-1)

    def _reg(self, theta):
        t2 = theta**2
        return self.lam * (t2 / (1 + t2)).sum(-1)

    def _reg_grad(self, theta):
        return self.lam * 2 * theta / (1 + theta**2) ** 2

    def f(self, theta):
        return self._loss(theta, self.A, self.y) + self._reg(theta)

    def grad(self, theta):
        margin = -self.y * (theta @ self.A.T)  # (n_rows, n)
        coef = -self.y * torch.sigmoid(margin) / self.n
        return coef @ self.A + self._reg_grad(theta)

    def stoch_grad(self, theta, generator, full_grad=None):
        """Mini-batch gradient: `batch` samples per row, uniformly with replacement (`full_grad`
        unused)."""
        idx = torch.randint(
            self.n, (theta.shape[0], self.batch), generator=generator, device=theta.device
        )
        A, y = self.A[idx], self.y[idx]  # (rows, batch, d), (rows, batch)
        coef = -y * torch.sigmoid(-y * torch.einsum("rbd,rd->rb", A, theta)) / self.batch
        return torch.einsum("rb,rbd->rd", coef, A) + self._reg_grad(theta)

    def noise_description(self) -> str:
        return f"mini-batch of {self.batch} from n = {self.n} samples, with replacement"

    def describe(self) -> str:
        return (
            "logistic regression + nonconvex regulariser lam sum theta^2/(1+theta^2), n = "
            f"{self.n}, d = {self.d}, lam = {self.lam:g}"
        )

    def _M(self):
        A = self.A.double().cpu()
        return A.T @ A / (4 * self.n) + 2 * self.lam * torch.eye(self.d, dtype=torch.float64)

    def L(self, p) -> float:
        M = self._M()
        lmax = float(torch.linalg.eigvalsh(M)[-1])
        p = float(p)
        if p == 2:
            return lmax
        spread = self.d ** (1 - 2 / p)  # sup ||v||_2^2 / ||v||_p^2
        rows = diagonal_smoothness(M.abs().sum(1), p)
        q = lp.dual_exponent(p)
        holder = (
            float((lp.lp_norm(self.A.double().cpu().numpy(), q, axis=1) ** 2).mean()) / 4
            + 2 * self.lam * spread
        )
        return min(lmax * spread, rows, holder)

    def _convex_minimum(self):
        """min of the convex logistic part by damped Newton in float64; returns (min, regulariser
        there)."""
        A, y = self.A.numpy(), self.y.numpy()
        theta = np.zeros(self.d)

        def loss(t):
            return np.logaddexp(0, -y * (A @ t)).mean()

        for _ in range(100):
            s = 1 / (1 + np.exp(y * (A @ theta)))  # sigmoid(-y a.theta)
            g = -(A * (y * s)[:, None]).mean(0)
            H = (A.T * (s * (1 - s))) @ A / self.n
            step = np.linalg.solve(H + 1e-14 * np.eye(self.d), g)
            t, value = 1.0, loss(theta)
            while loss(theta - t * step) > value - 0.25 * t * (g @ step) and t > 1e-12:
                t /= 2
            theta = theta - t * step
            if np.linalg.norm(g) < 1e-13:
                break
        reg = float(self._reg(torch.as_tensor(theta)))
        return float(loss(theta)), reg


# ---------------------------------------------------------------------------------------------
# the library


def _strong():
    return Quadratic(
        [200.0, 0.05],
        [1.0, 4.0],
        [0.0, 0.0],
        sigma=10.0,
        name="strong",
        doc=(
            "eq. 17: 100 (x1 - 1)^2 + 0.025 (x2 - 4)^2, Hessian diag(200, 0.05) (strongly "
            "anisotropic)"
        ),
    )


def _weak():
    return Quadratic(
        [1.2, 0.8],
        [1.0, 4.0],
        [0.0, 0.0],
        sigma=1.0,
        name="weak",
        doc="eq. 18: 0.6 (x1 - 1)^2 + 0.4 (x2 - 4)^2, Hessian diag(1.2, 0.8) (near isotropic)",
    )


def _aniso_lam(d=16, top=100.0, condition=1e4):
    return top * np.geomspace(1.0, 1.0 / condition, d)


def _aniso():
    lam = _aniso_lam()
    return Quadratic(
        lam,
        np.ones(lam.size),
        np.zeros(lam.size),
        sigma=3.0,
        name="aniso",
        doc=(
            f"d = {lam.size} diagonal quadratic, eigenvalues geometric from {lam[0]:g} to "
            f"{lam[-1]:g} (eq. 17 generalised)"
        ),
    )


def _heavy():
    lam = _aniso_lam()
    return Quadratic(
        lam,
        np.ones(lam.size),
        np.zeros(lam.size),
        sigma=3.0,
        nu=3,
        name="heavy",
        doc=(
            f"the 'aniso' quadratic (d = {lam.size}) with Student-t noise, nu = 3 (finite "
            "variance, infinite third moment)"
        ),
    )


def _logsum():
    d = 16
    return LogSum(3.0 * np.cos(np.arange(d)) + 0.5 * np.sign(np.cos(np.arange(d))), sigma=1.0)


def _logistic():
    return Logistic()


# name -> factory; each factory builds a fresh float64 CPU problem
PROBLEMS = {
    "strong": _strong,
    "weak": _weak,
    "aniso": _aniso,
    "logsum": _logsum,
    "logistic": _logistic,
    "heavy": _heavy,
}


def make_problem(name: str) -> Problem:
    """A library problem by name, or a user's class as 'module:Class' (built with no arguments)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"problem must be a name, got {name!r}")
    if name in PROBLEMS:
        return PROBLEMS[name]()
    if ":" not in name:
        raise ValueError(
            f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)} or give 'module:Class'"
        )
    from lpcheck import userspec  # MODULE from the current directory or a .py file, no PYTHONPATH

    try:
        obj = userspec.load(name, "--problem", kind=None)
    except (ValueError, FileNotFoundError) as e:
        raise type(e)(f"cannot load problem {name!r}: {e}") from None
    if isinstance(obj, type):
        obj = userspec.call(obj, name, "--problem")  # its __init__ is the user's code
    elif callable(obj) and not hasattr(obj, "grad"):  # a factory function, a module's helper
        raise ValueError(
            f"--problem {name}: a {type(obj).__name__}, not a problem: give a Problem subclass "
            "(built with no arguments) or an instance of one (see lpcheck.rates.problems)"
        )
    return check_problem(obj)


def check_problem(problem) -> Problem:
    """Check the protocol on x0 (name, shapes, dtypes, finiteness, the default noise's sigma and
    shape, L(p) > 0 at the p's the report lists, f(x0) >= f_star); ValueError if broken."""
    for attr in ("name", "d", "x0", "f_star", "f", "grad", "L", "stoch_grad"):
        if not hasattr(problem, attr):
            raise ValueError(
                f"problem {type(problem).__name__} lacks `{attr}` (see lpcheck.rates.problems)"
            )
    name = problem.name
    if not isinstance(name, str) or not name.strip():  # the report's headings and describe()
        raise ValueError(f"problem.name must be a non-empty string, got {name!r}")
    d = checks.integer("problem.d", problem.d, low=1)
    x0 = problem.x0
    if not isinstance(x0, torch.Tensor) or tuple(x0.shape) != (d,):
        raise ValueError(f"problem.x0 must be a torch tensor of shape ({d},)")
    if x0.is_complex() or not x0.is_floating_point():  # complex would lose its imaginary part
        raise ValueError(f"problem.x0 must be a real floating-point tensor, got dtype {x0.dtype}")
    f_star = checks.real("problem.f_star", problem.f_star)
    theta = x0.reshape(1, d).to(torch.float64)
    value = _output(problem, "f", (theta,), (1,))
    g = _output(problem, "grad", (theta,), (1, d))
    gen = torch.Generator(device=x0.device).manual_seed(0)
    gs = _output(problem, "stoch_grad", (theta.expand(2, d), gen, g.expand(2, d)), (2, d))
    if not (bool(torch.isfinite(value).all()) and bool(torch.isfinite(g).all())):
        raise ValueError(f"problem {name}: f or grad is not finite at x0")
    if not bool(torch.isfinite(gs).all()):
        raise ValueError(f"problem {name}: stoch_grad is not finite at x0")
    _check_default_noise(problem, theta.expand(2, d))
    for p in (2, 3, 4, 6, math.inf):  # the constants the report prints; a study takes its max
        L = _call(problem, "L", (p,))
        checks.real(f"problem {name}: L({p:g})", L, low=0.0, low_open=True)
    if not float(value) >= f_star:
        raise ValueError(f"problem {name}: f(x0) = {float(value)} is below f_star = {f_star}")
    return problem


def _call(problem, what, args):
    """problem.WHAT(*args) at x0, its exception a ValueError naming the problem and the method."""
    try:
        with torch.no_grad():
            return getattr(problem, what)(*args)
    except Exception as e:
        at = (
            f"at x0 (theta float64 of shape {tuple(args[0].shape)})"
            if isinstance(args[0], torch.Tensor)
            else f"at p = {args[0]:g}"
        )
        raise ValueError(
            f"problem {problem.name}: {what} raised {type(e).__name__} {at}: {e}"
        ) from None


def _output(problem, what, args, shape) -> torch.Tensor:
    """f's, grad's or stoch_grad's value at x0 in float64: a real tensor of `shape` in theta's
    dtype (a float32 or float16 result would cut every run's precision without a word)."""
    out = _call(problem, what, args)
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        raise ValueError(
            f"problem {problem.name}: {what} must return a real floating-point torch tensor, "
            f"got {type(out).__name__}"
            + (f" of dtype {out.dtype}" if hasattr(out, "dtype") else "")
        )
    if tuple(out.shape) != shape:
        raise ValueError(
            f"problem {problem.name}: f must map (n, d) to (n,), grad and stoch_grad (n, d) to (n, "
            f"d); {what} gave shape {tuple(out.shape)} for {shape[0]} row(s)"
        )
    if out.dtype != torch.float64:
        raise ValueError(
            f"problem {problem.name}: {what} must return theta's dtype (torch.float64 here), got "
            f"{out.dtype}"
        )
    return out


def _check_default_noise(problem, theta) -> None:
    """The base class's noise, where the problem uses it: sigma finite and >= 0 (a negative one
    would be reported as it is), and an overridden noise() of theta's shape, one draw per row (a
    (d,) draw broadcasts: every seed would share it)."""

    def own(method):  # the bound method's function: an instance attribute overrides too
        return getattr(getattr(problem, method, None), "__func__", None)

    if own("stoch_grad") is not Problem.stoch_grad:
        return
    if own("noise") is Problem.noise:
        checks.real(f"problem {problem.name}: sigma", problem.sigma, low=0.0)
        return
    z = _call(problem, "noise", (theta, torch.Generator(device=theta.device).manual_seed(0)))
    if not isinstance(z, torch.Tensor) or tuple(z.shape) != tuple(theta.shape):
        got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(
            f"problem {problem.name}: noise must map (n, d) to (n, d), one independent draw per "
            f"row, got {got} for theta of shape {tuple(theta.shape)}"
        )
