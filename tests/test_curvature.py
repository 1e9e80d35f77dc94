"""lpcheck.curvature: Hessian-vector products, Lanczos, Hutchinson, stochastic Lanczos quadrature."""

import pytest
import torch

from lpcheck import curvature as C


def known_matrix(d=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    lam = torch.cat([torch.tensor([50.0, 20.0, 7.0]), torch.linspace(-2.0, 1.0, d - 3, dtype=torch.float64)])
    return Q @ torch.diag(lam) @ Q.T, lam


def test_top_eigenvalues_of_a_known_matrix():
    H, lam = known_matrix()
    top = C.top_eigenvalues(C.DenseOperator(H), k=3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(top, torch.tensor([50.0, 20.0, 7.0], dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_lanczos_tridiagonal_reproduces_the_spectrum_when_the_space_is_exhausted():
    H, lam = known_matrix(d=12)
    alpha, beta, Q = C.lanczos(C.DenseOperator(H), 12, generator=torch.Generator().manual_seed(0))
    T = torch.diag(alpha) + torch.diag(beta, 1) + torch.diag(beta, -1)
    torch.testing.assert_close(torch.linalg.eigvalsh(T), torch.sort(lam).values, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(Q @ Q.T, torch.eye(len(alpha), dtype=torch.float64), atol=1e-10, rtol=0)


def test_hutchinson_trace_within_its_standard_error():
    H, lam = known_matrix()
    est, se, n = C.hutchinson_trace(C.DenseOperator(H), samples=400, generator=torch.Generator().manual_seed(0))
    assert n == 400 and se > 0
    assert abs(est - float(lam.sum())) < 4 * se


def test_slq_moments_and_negative_mass():
    H, lam = known_matrix(d=60)
    out = C.spectral_density(C.DenseOperator(H), vectors=64, steps=60, generator=torch.Generator().manual_seed(0))
    nodes = torch.tensor(out["nodes"], dtype=torch.float64)
    weights = torch.tensor(out["weights"], dtype=torch.float64) / out["vectors"]
    assert abs(float(weights.sum()) - 1) < 1e-9
    # E[sum_j w_j theta_j^k] = tr(H^k)/d; 64 vectors: a few percent of MC error
    for k in (1, 2):
        assert float((weights * nodes**k).sum()) == pytest.approx(float((lam**k).mean()), rel=0.15)
    exact_negative = float((lam < 0).double().mean())
    assert abs(out["negative_mass"] - exact_negative) < 0.1
    assert out["max_node"] == pytest.approx(50.0, rel=1e-9)
    density = torch.tensor(out["density"], dtype=torch.float64)
    grid = torch.tensor(out["grid"], dtype=torch.float64)
    assert float(torch.trapezoid(density, grid)) == pytest.approx(1.0, rel=1e-3)


def mlp_and_data(bn=False, seed=0):
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(5, 6)] + ([torch.nn.BatchNorm1d(6)] if bn else []) + [torch.nn.Tanh(), torch.nn.Linear(6, 3)]
    model = torch.nn.Sequential(*layers).double()
    batches = [(torch.randn(16, 5, dtype=torch.float64), torch.randint(0, 3, (16,))) for _ in range(3)]
    return model, batches


def loss_fn(model, batch):
    x, y = batch
    return torch.nn.functional.cross_entropy(model(x), y)


def dense_hessian(model, batches):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def f(v):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            params[n] = v[i:i + s.numel()].view(s)
            i += s.numel()
        return sum(loss_fn(lambda x: torch.func.functional_call(model, params, (x,)), b) for b in batches) / len(batches)
    return torch.autograd.functional.hessian(f, flat)


def test_hvp_matches_the_dense_hessian_and_so_do_eigenvalues_and_trace():
    model, batches = mlp_and_data()
    op = C.HessianOperator(model, loss_fn, batches, mode="eval")
    H = dense_hessian(model, batches)
    v = torch.randn(op.dim, dtype=torch.float64)
    torch.testing.assert_close(op(v), H @ v, rtol=1e-10, atol=1e-12)
    exact = torch.linalg.eigvalsh(H)
    top = C.top_eigenvalues(op, k=2, steps=op.dim, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(top, torch.flip(exact, [0])[:2], rtol=1e-8, atol=1e-10)


def test_train_mode_keeps_batchnorm_statistics_and_the_training_flag():
    model, batches = mlp_and_data(bn=True)
    model.eval()
    bn = model[1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    op_train = C.HessianOperator(model, loss_fn, batches, mode="train")
    v = torch.randn(op_train.dim, dtype=torch.float64)
    hv_train = op_train(v)
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert torch.equal(bn.num_batches_tracked, before[2]) and not model.training
    hv_eval = C.HessianOperator(model, loss_fn, batches, mode="eval")(v)
    assert not torch.allclose(hv_train, hv_eval)  # the mode matters with BatchNorm, hence explicit


@pytest.mark.parametrize("kwargs,match", [(dict(mode="test"), "mode must be"), (dict(batches=[]), "batches is empty")])
def test_bad_arguments(kwargs, match):
    model, batches = mlp_and_data()
    args = dict(model=model, loss_fn=loss_fn, batches=batches, mode="eval") | kwargs
    with pytest.raises(ValueError, match=match):
        C.HessianOperator(**args)


def test_wrong_vector_shape():
    model, batches = mlp_and_data()
    with pytest.raises(ValueError, match="flat vector of length"):
        C.HessianOperator(model, loss_fn, batches)(torch.zeros(3, dtype=torch.float64))


@pytest.mark.gpu
def test_cuda_hvp_matches_cpu():
    model, batches = mlp_and_data()
    v = torch.randn(sum(p.numel() for p in model.parameters()), dtype=torch.float64)
    cpu = C.HessianOperator(model, loss_fn, batches, mode="eval")(v)
    model = model.cuda()
    gpu = C.HessianOperator(model, loss_fn, [(x.cuda(), y.cuda()) for x, y in batches], mode="eval")(v.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-9, atol=1e-12)


def _sym(n=5):
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return C.DenseOperator(a + a.T)


@pytest.mark.parametrize("call,match", [
    (lambda: C.lanczos(_sym(), 3, v0=torch.zeros(5, dtype=torch.float64)), "v0 must be a finite non-zero"),
    (lambda: C.top_eigenvalues(_sym(), 1, steps=0), "steps must be"),  # was: silently the default
    (lambda: C.top_eigenvalues(_sym(), 3, steps=2), r"steps must be an integer >= 3"),  # was: 2 values for k = 3
    (lambda: C.spectral_density(_sym(), vectors=1, steps=4, sigma=0.0), "sigma must be"),  # was: a NaN density
    (lambda: C.DenseOperator(torch.tensor([[1.0, 2.0], [0.0, 1.0]])), "matrix must be symmetric"),
    (lambda: C.lanczos(_sym(), float("nan")), "steps must be an integer"),
    (lambda: C.top_eigenvalues(_sym(), 6), r"k must be an integer in \[1, 5\]"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_numbers_torch_accepts_are_accepted():
    import numpy as np

    op = _sym()
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(C.top_eigenvalues(op, np.int64(2), steps=torch.tensor(5), generator=gen()),
                       C.top_eigenvalues(op, 2, steps=5, generator=gen()))
    assert C.spectral_density(op, vectors=np.int32(1), steps=4, sigma=np.float64(0.1), grid=np.linspace(-5, 5, 7),
                              generator=gen())["sigma"] == 0.1
