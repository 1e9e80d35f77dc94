"""lpcheck.rates.simulation: the (seeds x d) batch against one lpcheck.optim optimizer per seed."""

import math

import pytest
import torch

from lpcheck import lp
from lpcheck.optim import LPSGD, LPSGDM
from lpcheck.rates.problems import LogSum, Quadratic, make_problem
from lpcheck.rates.simulation import (
    METHODS,
    checkpoint_times,
    epoch_of,
    make_method,
    p_at,
    simulate,
)
from lpcheck.schedule import cosine_p


def _per_seed_reference(problem, method, T, eta, seeds, epochs, eps, seed):
    """One optimizer (or eq. 10 step) per seed, each on its own (d,) parameter.

    The stochastic gradients are drawn for all seeds at once from the same generator as `simulate`
    (so both see the same noise); everything after that is per seed, through lpcheck.optim itself.
    Returns (per-seed mean ||grad f||^2, final thetas, the momentum buffers seen at each step).
    """
    gen = torch.Generator().manual_seed(seed)
    params = [problem.x0.clone() for _ in range(seeds)]
    if method.kind == "rescale":
        kw = dict(lr=eta, eps=eps)
        kw.update(p=method.p) if method.p_max is None else kw.update(
            p_max=method.p_max, total_epochs=epochs
        )
        if method.momentum > 0:
            opts = [LPSGDM([q], momentum=method.momentum, **kw) for q in params]
        else:
            opts = [LPSGD([q], **kw) for q in params]
    acc = torch.zeros(seeds, dtype=torch.float64)
    for t in range(T):
        s = t * epochs // T + 1
        theta = torch.stack(params)
        g_full = problem.grad(theta)
        acc += (g_full**2).sum(1)
        g = problem.stoch_grad(theta, gen, g_full)
        for i in range(seeds):
            if method.kind == "rescale":
                opts[i].set_epoch(s)
                params[i].grad = g[i].clone()
                opts[i].step()
            else:
                p = cosine_p(s, epochs, method.p_max) if method.p_max is not None else method.p
                params[i].add_(lp.steepest_descent(g[i], p, lr=eta))
    return acc / T, torch.stack(params)


PROBLEMS = {
    "quadratic": lambda: Quadratic([50.0, 3.0, 0.2], [1.0, -2.0, 0.5], [0.0, 0.0, 3.0], sigma=2.0),
    "logsum": lambda: LogSum([3.0, -0.5, 2.0, 0.1], sigma=1.0),
    "logistic": lambda: make_problem("logistic"),
}


@pytest.mark.parametrize("name", list(METHODS))
@pytest.mark.parametrize("pname", list(PROBLEMS))
def test_batch_equals_one_optimizer_per_seed(name, pname):
    problem = PROBLEMS[pname]()
    method = make_method(name, p_max=5.0, momentum=0.8)
    T, seeds, epochs, eps = 23, 5, 4, 1e-3  # T not a multiple of the epochs; a visible eps
    eta = 0.01 if pname == "quadratic" else 0.05
    run = simulate(problem, method, T, eta, seeds, epochs=epochs, eps=eps, seed=3)
    want_sq, want_theta = _per_seed_reference(problem, method, T, eta, seeds, epochs, eps, seed=3)
    # f_final is f at the final iterate: compare that too
    torch.testing.assert_close(run.grad_sq_mean, want_sq, rtol=1e-12, atol=0)
    torch.testing.assert_close(run.f_final, problem.f(want_theta), rtol=1e-12, atol=1e-300)


def test_sgd_and_sgdm_baselines_are_plain_sgd_and_ema_momentum():
    """Written out by hand, not through lpcheck.optim: theta -= eta g, and m = beta m + (1-beta) g
    from 0."""
    problem = Quadratic([4.0, 1.0], [1.0, 1.0], [0.0, 0.0], sigma=0.5)
    T, eta, beta = 17, 0.05, 0.7
    for name in ("sgd", "sgdm"):
        run = simulate(problem, make_method(name, momentum=beta), T, eta, 3, seed=5)
        gen = torch.Generator().manual_seed(5)
        theta = problem.x0.expand(3, 2).clone()
        m = torch.zeros_like(theta)
        for _ in range(T):
            g = problem.stoch_grad(theta, gen)
            m = beta * m + (1 - beta) * g
            theta = theta - eta * (m if name == "sgdm" else g)
        torch.testing.assert_close(run.f_final, problem.f(theta), rtol=1e-13, atol=0)


def test_sign_is_g_over_abs_g_plus_eps():
    problem = Quadratic([4.0, 1.0], [1.0, 1.0], [0.0, 0.0], sigma=0.5)
    run = simulate(problem, make_method("sign"), 9, 0.01, 2, eps=0.3, seed=1)
    gen = torch.Generator().manual_seed(1)
    theta = problem.x0.expand(2, 2).clone()
    for _ in range(9):
        g = problem.stoch_grad(theta, gen)
        theta = theta - 0.01 * g / (g.abs() + 0.3)
    torch.testing.assert_close(run.f_final, problem.f(theta), rtol=1e-13, atol=0)


def test_epochs_split_T_evenly_and_the_schedule_reaches_2():
    T, S = 23, 4
    epochs = [epoch_of(t, T, S) for t in range(T)]
    assert epochs[0] == 1 and epochs[-1] == S and sorted(epochs) == epochs
    sizes = [epochs.count(s) for s in range(1, S + 1)]
    assert max(sizes) - min(sizes) <= 1
    method = make_method("lpsgd", p_max=6.0)
    assert p_at(method, 0, T, S) == 6.0 and p_at(method, T - 1, T, S) == 2.0
    assert p_at(make_method("sign"), 5, T, S) == math.inf


def test_checkpoints_hold_theta_and_the_previous_momentum():
    """Replayed by hand (Algorithm 2 written out): the checkpoint at t holds theta_t and m_{t-1}."""
    problem = Quadratic([4.0, 1.0], [1.0, 1.0], [0.0, 0.0], sigma=0.5)
    beta, eta, eps, p, T = 0.5, 0.05, 1e-8, 4.0, 40
    run = simulate(
        problem,
        make_method("lpsgdm", p=p, momentum=beta),
        T,
        eta,
        3,
        eps=eps,
        seed=2,
        checkpoint_seeds=2,
        checkpoint_count=5,
    )
    times = checkpoint_times(T, 5)
    assert times[0] == 0 and times[-1] == T - 1 and len(times) >= 4
    assert run.ck_t == [t for t in times for _ in range(2)] and run.ck_p == [p] * (2 * len(times))
    gen = torch.Generator().manual_seed(2)
    theta = problem.x0.expand(3, 2).clone()
    m = torch.zeros_like(theta)  # m_{-1} = 0 (Algorithm 2, line 1)
    for t in range(T):
        if t in times:
            k = times.index(t)
            torch.testing.assert_close(
                run.ck_theta[2 * k : 2 * k + 2], theta[:2], rtol=1e-13, atol=1e-15
            )
            torch.testing.assert_close(
                run.ck_momentum[2 * k : 2 * k + 2], m[:2], rtol=1e-13, atol=1e-15
            )
        g = problem.stoch_grad(theta, gen)
        m = beta * m + (1 - beta) * g
        theta = theta - eta * lp.rescale(m, p, eps)


@pytest.mark.parametrize("T,n", [(1, 5), (2, 2), (10, 3), (30000, 12), (7, 50)])
def test_checkpoint_times_are_distinct_sorted_and_span_the_run(T, n):
    times = checkpoint_times(T, n)
    assert (
        times == sorted(set(times))
        and times[0] == 0
        and times[-1] == T - 1
        and len(times) <= max(n, 2)
    )


def test_divergence_is_reported_not_raised():
    problem = Quadratic([100.0], [0.0], [1.0], sigma=0.0)
    run = simulate(problem, make_method("sgd"), 2000, 0.5, 2)  # eta lambda = 50: blows up
    assert not bool(run.finite.any())
    run = simulate(problem, make_method("steepest", p_max=4.0), 2000, 0.5, 2)
    assert not bool(run.finite.any())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(T=0), "T and seeds must be >= 1"),
        (dict(seeds=0), "T and seeds must be >= 1"),
        (dict(eta=0.0), "eta must be finite and > 0"),
        (dict(eta=math.inf), "eta must be finite and > 0"),
        (dict(epochs=0), "total_epochs must be an integer >= 1"),
    ],
)
def test_bad_simulation_input(kwargs, match):
    args = dict(T=10, eta=0.1, seeds=2) | kwargs
    with pytest.raises(ValueError, match=match):
        simulate(
            Quadratic([1.0], [0.0], [1.0]),
            make_method("sgd"),
            args.pop("T"),
            args.pop("eta"),
            args.pop("seeds"),
            **args,
        )


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: make_method("adam"),
            r"unknown optimizer 'adam'; choose from lpsgd, lpsgdm, sgd, sgdm, sign, steepest",
        ),
        (lambda: make_method("lpsgd", p_max=1.5), "p_max must be"),
        (lambda: make_method("lpsgd", p=1.0), r"p must be in \[2, inf\]"),
        (lambda: make_method("lpsgdm", momentum=1.0), r"momentum \(beta\) must be in \[0, 1\)"),
    ],
)
def test_bad_method(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.gpu
def test_cuda_run_matches_cpu():
    problem = make_problem("aniso")
    method = make_method("lpsgdm")
    cpu = simulate(problem, method, 50, 1e-3, 8, seed=0)
    gpu = simulate(problem.to("cuda"), method, 50, 1e-3, 8, seed=0, device="cuda")
    assert gpu.grad_sq_mean.device.type == "cuda"
    # different generators on the two devices: compare the deterministic start and the scale only
    assert float(gpu.grad_sq_mean.mean().cpu()) == pytest.approx(
        float(cpu.grad_sq_mean.mean()), rel=0.2
    )


@pytest.mark.parametrize(
    "spec",
    [
        "adam:eps=1e-6",
        "heavyball:nesterov=True",
        "clipped:solver=svd,rho=0.5,vector=l2",
        "scion:vector=rms,momentum=0.5",
        "sign:momentum=0.9",
    ],
)
def test_simulate_runs_any_layer_method_each_row_as_one_seed(spec):
    """A lpcheck.methods method (not only the paper's six) in the batched run == that method per
    seed."""
    from lpcheck import methods

    problem = PROBLEMS["logsum"]()
    method = methods.resolve(spec)
    T, seeds, eta = 17, 4, 0.02
    run = simulate(problem, method, T, eta, seeds, seed=5)
    gen = torch.Generator().manual_seed(5)
    theta = problem.x0.expand(seeds, problem.d).clone()
    states = [method.init([theta[i].clone()]) for i in range(seeds)]
    for _ in range(T):
        g = problem.stoch_grad(theta, gen)
        rows = []
        for i in range(seeds):
            d, states[i] = method.update([g[i]], states[i], params=[theta[i]])
            rows.append(theta[i] - eta * d[0])
        theta = torch.stack(rows)
    torch.testing.assert_close(run.f_final, problem.f(theta), rtol=1e-12, atol=1e-14)
    assert run.ck_momentum is None and run.ck_p == [method.hp.get("p")] * len(run.ck_p)


def test_the_paper_methods_are_the_layers_at_the_active_p():
    from lpcheck import methods

    assert make_method("lpsgdm", p=4.0, momentum=0.7).layer(4.0, eps=1e-3) == methods.make(
        "lpsgdm", p=4.0, eps=1e-3, momentum=0.7
    )
    assert make_method("sgd").layer(2.0) == methods.make("lpsgd", p=2.0)
    assert make_method("steepest", p_max=5.0).layer(3.0) == methods.make("steepest", p=3.0)
    with pytest.raises(ValueError, match="method must be a rates Method"):
        simulate(PROBLEMS["logsum"](), "adam", 5, 0.1, 2)


# -- any method, any metric, a p schedule of one's own (issue 15, item 5) --------------------------


def test_the_paper_names_keep_their_meaning_and_the_layers_are_reached_by_theirs():
    """'sign' stays LPSGD at p = inf (g/(|g| + eps)) and 'sgdm' the EMA of eq. 23; the layer's exact
    sign is 'signsgd'."""
    from lpcheck.rates.optimizers import LayerMethod
    from lpcheck.rates.simulation import resolve_method

    assert resolve_method("sign") == make_method("sign") and resolve_method("sgdm") == make_method(
        "sgdm"
    )
    assert resolve_method("lpsgdm", momentum=0.8) == make_method("lpsgdm", momentum=0.8)
    fixed = resolve_method("lpsgd:p=4")
    assert (fixed.p, fixed.p_max, fixed.name) == (4.0, None, "lpsgd:p=4")
    assert resolve_method("sign:momentum=0.5").layer(math.inf) == make_method(
        "lpsgdm", p=math.inf, momentum=0.5
    ).layer(math.inf)
    exact = resolve_method("signsgd")
    assert isinstance(exact, LayerMethod) and exact.method == __import__("lpcheck").methods.make(
        "sign"
    )
    problem = Quadratic([4.0, 1.0], [1.0, 1.0], [0.0, 0.0], sigma=0.5)
    a = simulate(problem, resolve_method("sign"), 9, 0.01, 2, eps=0.3, seed=1)
    b = simulate(problem, exact, 9, 0.01, 2, eps=0.3, seed=1)
    gen = torch.Generator().manual_seed(1)
    theta = problem.x0.expand(2, 2).clone()
    for _ in range(9):
        theta = theta - 0.01 * problem.stoch_grad(theta, gen).sign()
    torch.testing.assert_close(b.f_final, problem.f(theta), rtol=1e-13, atol=0)
    assert not torch.allclose(a.f_final, b.f_final)  # eps = 0.3 tells g/(|g|+eps) from sign(g)


@pytest.mark.parametrize(
    "spec,match",
    [
        (
            "sgd:momentum=0.9",
            r"sgd has no setting momentum in lpcheck rates; its settings are none",
        ),
        ("lpsgd:beta=2", r"lpsgd has no setting beta .* its settings are p, p_max"),
        ("lpsgd:p=1", r"--optimizer lpsgd:p=1: p must be a real number (>= 2|in \[2, inf\])"),
        ("adam:eps=-1", r"--optimizer adam:eps=-1: eps must be"),
        ("adam:foo", r"--optimizer adam:foo: hyperparameters must be key=value"),
        (
            "nosuchmodule_xyz:Opt",
            r"--optimizer nosuchmodule_xyz:Opt: cannot import module 'nosuchmodule_xyz'",
        ),
        (
            "math:pi",
            r"neither a lpcheck.methods.Method subclass nor a torch.optim.Optimizer subclass",
        ),
        ("torch.optim:NoSuch", r"module 'torch.optim' has no attribute 'NoSuch'"),
        ("rosenbrock", r"unknown optimizer 'rosenbrock'"),
    ],
)
def test_bad_optimizer_specs_are_named(spec, match):
    from lpcheck.rates.simulation import resolve_method

    with pytest.raises(ValueError, match=match):
        resolve_method(spec)


def test_metrics_along_the_run_are_the_dual_norms_computed_directly():
    """grad_q_sq at the active p of the cosine schedule, dual / dual_sq of the layerwise and linf
    norms, and grad_l2 (||grad f||_2, first power, whatever the method's norm), each against a
    hand replay of the same run (the metric does not change the iterates)."""
    from lpcheck.rates.simulation import resolve_method

    problem = PROBLEMS["logsum"]()
    T, seeds, epochs, eta, eps = 23, 4, 4, 0.05, 1e-3
    for spec, metric in [
        ("lpsgd", "grad_q_sq"),
        ("lpsgd", "dual"),
        ("clipped:rho=0.5,solver=svd,radius=2", "dual"),
        ("lion", "dual_sq"),
        ("sgd", "grad_l2_sq"),
        ("lpsgd", "grad_l2"),
        ("lion", "grad_l2"),
    ]:
        method = resolve_method(spec, p_max=5.0)
        run = simulate(
            problem, method, T, eta, seeds, epochs=epochs, eps=eps, seed=3, metric=metric
        )
        plain = simulate(problem, method, T, eta, seeds, epochs=epochs, eps=eps, seed=3)
        assert torch.equal(run.f_final, plain.f_final) and torch.equal(
            run.grad_sq_mean, plain.grad_sq_mean
        )
        gen = torch.Generator().manual_seed(3)
        theta = problem.x0.expand(seeds, problem.d).clone()
        lm = method.method if hasattr(method, "method") else None
        state = lm.init([theta]) if lm is not None else None
        want = torch.zeros(seeds, dtype=torch.float64)
        for t in range(T):
            s = epoch_of(t, T, epochs)
            g_full = problem.grad(theta)
            if metric == "grad_l2":
                norm = g_full.norm(dim=1)
            elif spec == "lpsgd":
                p = cosine_p(s, epochs, 5.0)
                q = 1.0 if p == math.inf else p / (p - 1)
                norm = torch.stack([torch.linalg.vector_norm(row, ord=q) for row in g_full])
            elif spec == "lion":
                norm = g_full.abs().sum(1)  # linf's dual: l1
            elif spec == "sgd":
                norm = g_full.norm(dim=1)
            else:
                norm = 2 * g_full.abs().sum(
                    1
                )  # layerwise sign ball of radius 2 on one vector: 2 ||g||_1
            want += norm if metric in ("dual", "grad_l2") else norm**2
            g = problem.stoch_grad(theta, gen, g_full)
            if spec == "lpsgd":
                theta = theta - eta * lp.rescale(g, cosine_p(s, epochs, 5.0), eps)
            elif spec == "sgd":
                theta = theta - eta * g
            else:
                d, state = lm.update([g], state, batched=True)
                theta = theta - eta * d[0]
        torch.testing.assert_close(run.metric_mean, want / T, rtol=1e-12, atol=0)
        assert run.metric == metric


def test_a_p_schedule_callable_sets_p_at_every_epoch():
    calls = []

    def steps(epoch, epochs):
        calls.append((epoch, epochs))
        return 8.0 if epoch == 1 else (4.0 if epoch < epochs else 2.0)

    method = make_method("lpsgdm", momentum=0.5, schedule=steps, schedule_name="steps")
    problem = Quadratic([4.0, 1.0], [1.0, 1.0], [0.0, 0.0], sigma=0.5)
    T, epochs, eta, eps = 20, 4, 0.05, 1e-3
    run = simulate(
        problem,
        method,
        T,
        eta,
        3,
        epochs=epochs,
        eps=eps,
        seed=2,
        checkpoint_seeds=1,
        checkpoint_count=20,
    )
    assert set(calls) == {(s, epochs) for s in range(1, epochs + 1)}
    assert run.ck_p == [steps(epoch_of(t, T, epochs), epochs) for t in run.ck_t]
    assert method.label() == "lpsgdm (p by steps, beta = 0.5)"
    gen = torch.Generator().manual_seed(2)
    theta = problem.x0.expand(3, 2).clone()
    m = torch.zeros_like(theta)
    for t in range(T):
        g = problem.stoch_grad(theta, gen)
        m = 0.5 * m + 0.5 * g
        theta = theta - eta * lp.rescale(m, steps(epoch_of(t, T, epochs), epochs), eps)
    torch.testing.assert_close(run.f_final, problem.f(theta), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "schedule,match",
    [
        (
            lambda s, S: 1.5,
            r"p schedule at epoch 1 of 4 must be a real number (>= 2|in \[2, inf\]), got 1.5",
        ),
        (
            lambda s, S: 6.0 if s < S else float("nan"),
            r"p schedule at epoch 4 of 4 must be a real number",
        ),
        (lambda s, S: 2 + 1 / (S - s), r"p schedule raised ZeroDivisionError at epoch 4 of 4"),
        (lambda s, S: "6", r"p schedule at epoch 1 of 4 must be a real number"),
    ],
)
def test_a_bad_p_schedule_is_named_with_its_epoch(schedule, match):
    method = make_method("lpsgd", schedule=schedule, schedule_name="p schedule")
    with pytest.raises(ValueError, match=match):
        simulate(Quadratic([1.0], [0.0], [1.0]), method, 8, 0.1, 2, epochs=4)


def test_a_metric_a_method_has_no_norm_for_is_refused():
    from lpcheck.rates.simulation import bound_metric_reason, metric_reason, resolve_method

    problem = Quadratic([1.0, 2.0], [0.0, 0.0], [1.0, 1.0])
    assert metric_reason(resolve_method("adam"), "dual", 2).startswith(
        "adam has no norm of its own"
    )
    rms = resolve_method("scion:vector=rms")
    assert metric_reason(rms, "grad_q_sq", 2).startswith("scion:vector=rms's norm layerwise")
    assert metric_reason(resolve_method("lion"), "grad_q_sq", 2) is None
    with pytest.raises(
        ValueError,
        match=r"metric 'dual_sq' is not defined for torch.optim:SGD: torch.optim:SGD has no "
        r"norm of its own.*; use grad_l2_sq or grad_l2",
    ):
        simulate(problem, resolve_method("torch.optim:SGD"), 5, 0.1, 2, metric="dual_sq")
    sgd = resolve_method(
        "torch.optim:SGD"
    )  # l2 needs no norm of the method's: defined for a torch class
    assert (
        metric_reason(sgd, "grad_l2", 2) is None
        and metric_reason(resolve_method("adam"), "grad_l2", 2) is None
    )
    run = simulate(problem, sgd, 5, 0.1, 2, metric="grad_l2")
    assert run.metric == "grad_l2" and bool(run.finite.all())
    for method in (
        sgd,
        resolve_method("lion"),
        make_method("lpsgd"),
    ):  # eq. 31 bounds a mean of squares, not of norms
        assert bound_metric_reason(method, "grad_l2", 2).startswith("no bound for this metric")
    with pytest.raises(
        ValueError,
        match=r"unknown metric 'l2'; choose from grad_l2_sq, grad_l2, grad_q_sq, dual_sq, "
        r"dual",
    ):
        simulate(problem, make_method("sgd"), 5, 0.1, 2, metric="l2")
