"""lpcheck.estimate.Probe: the streamed estimates equal the (K, d) formulas; probing changes
nothing."""

import gc
import math
import os
import socket
import sys

import numpy as np
import pytest
import torch

from lpcheck import estimate, grads, lp
from lpcheck.estimate import smoothness
from lpcheck.estimate.probe import Probe
from lpcheck.optim import LPSGD, LPSGDM, NonFiniteGradientError

N, B = 96, 16  # 6 blocks


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _setup(seed=0, opt_cls=LPSGDM, dropout=False, **opt_kw):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 8),
        torch.nn.BatchNorm1d(8),
        torch.nn.ReLU(),
        *([torch.nn.Dropout(0.3)] if dropout else []),
        torch.nn.Linear(8, 3),
    )
    gen = torch.Generator().manual_seed(100 + seed)
    x = torch.randn(N, 6, generator=gen)
    y = torch.randint(0, 3, (N,), generator=gen)
    kw = (
        dict(lr=0.05, p=6.0, weight_decay=0.01, momentum=0.9)
        if opt_cls is LPSGDM
        else dict(lr=0.05, p=6.0)
    )
    kw.update(opt_kw)
    return net, (x, y), opt_cls(net.parameters(), **kw)


def _train(net, opt, data, steps, probe=None, every=2):
    x, y = data
    for t in range(steps):
        if probe is not None and t % every == 0:
            probe.measure(opt, step=t)
        idx = torch.arange(t * 8 % N, t * 8 % N + 8)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
        opt.step()


def _reference(probe, net, data, opt, generator_state):
    """The record's numbers the slow way: every block gradient held in a (K, d) array."""
    ps = grads.parameters(net)
    x, y = data
    group = opt.param_groups[0]
    p, eps, lr = group["p"], group["eps"], group["lr"]

    def block(j):
        idx = probe.blocks[j]
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        return float(loss.detach()), grads.flat_grad(loss, ps).double()

    def full():
        out = [block(j) for j in range(probe.n_blocks)]
        return sum(v for v, _ in out) / probe.n_blocks, sum(g for _, g in out) / probe.n_blocks

    gen = torch.Generator()
    gen.set_state(generator_state)
    draws = torch.randint(probe.n_blocks, (probe.samples,), generator=gen).tolist()
    f, fg = full()
    G = torch.stack([block(j)[1] for j in draws])
    ref = {
        "loss": f,
        "grad_sq": float(fg @ fg),
        "align": estimate.alignment_samples(fg, G, p, eps),
        "moment": estimate.second_moment_samples(G, p, eps),
        "noise": estimate.noise_samples(fg, G, p),
    }
    theta = grads.flat_params(ps).double()
    if isinstance(opt, LPSGDM):
        m = grads.flat_state(opt, ps, "momentum_buffer").double()
        beta, wd = group["momentum"], group["weight_decay"]
        ref["align_m"] = estimate.momentum_alignment_samples(fg, G, m, beta, p, eps)
        ref["moment_m"] = estimate.momentum_second_moment_samples(G, m, beta, p, eps)
        step = theta * (1 - lr * wd) - lr * lp.rescale(beta * m + (1 - beta) * G[0], p, eps)
    else:
        step = theta - lr * lp.rescale(G[0], p, eps)
    grads.set_flat_params(ps, step.float())
    f_y, fg_y = full()
    grads.set_flat_params(ps, theta.float())
    moved = step.float().double()  # the probe moves the float32 parameters
    ref["step_ratio"] = float(smoothness.gradient_ratio(theta, moved, fg, fg_y, p))
    ref["step_quad"] = float(smoothness.quadratic_ratio(theta, moved, f, f_y, fg, p))
    return ref


@pytest.mark.parametrize("opt_cls,mode", [(LPSGDM, "train"), (LPSGDM, "eval"), (LPSGD, "train")])
def test_streamed_record_equals_the_K_by_d_formulas(opt_cls, mode):
    net, data, opt = _setup(opt_cls=opt_cls)
    _train(net, opt, data, 3)  # a real momentum buffer
    probe = Probe(net, data, batch_size=B, samples=5, mode=mode, seed=3)
    state = probe.generator.get_state()
    rec = probe.measure(opt, step=3)
    net.train(mode == "train")
    ref = _reference(probe, net, data, opt, state)
    net.train()
    assert rec["loss"] == pytest.approx(ref["loss"], rel=1e-6)
    assert rec["grad_sq"] == pytest.approx(ref["grad_sq"], rel=1e-5)
    for name in ("align", "moment", "noise") + (
        ("align_m", "moment_m") if opt_cls is LPSGDM else ()
    ):
        np.testing.assert_allclose(rec["samples"][name], ref[name].numpy(), rtol=2e-5, err_msg=name)
    assert ("align_m" in rec["samples"]) == (opt_cls is LPSGDM)
    (pair,) = rec["pairs"]
    assert pair["kind"] == "step"
    assert pair["grad_ratio"] == pytest.approx(ref["step_ratio"], rel=1e-4)
    assert pair["quad_xy"] == pytest.approx(
        ref["step_quad"], rel=1e-2, abs=1e-3 * abs(ref["step_ratio"])
    )
    assert rec["K"] == 5 and rec["blocks"] == N // B and rec["passes"] == 2 * (N // B) + 5
    assert rec["p"] == 6.0 and rec["mode"] == mode


def _snapshot(net, opt):
    return (
        [t.clone() for t in list(net.parameters()) + list(net.buffers())]
        + [p.grad.clone() for p in net.parameters()]
        + [v.clone() for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    )


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_probing_does_not_change_training(mode):
    # dropout draws from the global RNG in train mode: the probe's draws must not shift training's
    net_a, data, opt_a = _setup(dropout=True)
    probe = Probe(net_a, data, batch_size=B, samples=3, mode=mode, step_pairs=2, seed=1)
    torch.manual_seed(7)
    _train(net_a, opt_a, data, 7, probe=probe)
    after_a = torch.rand(3)  # the global RNG is where it would have been without probes
    net_b, _, opt_b = _setup(dropout=True)
    torch.manual_seed(7)
    _train(net_b, opt_b, data, 7)
    after_b = torch.rand(3)
    assert len(probe.records) == 4
    for a, b in zip(_snapshot(net_a, opt_a), _snapshot(net_b, opt_b)):
        assert torch.equal(a, b)  # bitwise: parameters, BN running stats and count, .grad, momentum
    assert torch.equal(after_a, after_b) and net_a.training
    kinds = [[pr["kind"] for pr in r["pairs"]] for r in probe.records]
    assert kinds[0] == ["step", "step"] and kinds[1] == ["step", "step", "trajectory"]


def test_fit_and_state_dict_round_trip():
    net, data, opt = _setup()
    probe = Probe(net, data, batch_size=B, samples=4, seed=2)
    _train(net, opt, data, 4, probe=probe)
    out = probe.fit(T=4, resamples=200)
    assert out["sample_sizes"]["checkpoints"] == 2 and out["assumption6"] is not None
    again = Probe(net, data, batch_size=B, samples=4, seed=2)
    again.load_state_dict(probe.state_dict())
    a, b = probe.measure(opt, step=4), again.measure(opt, step=4)
    for k in ("loss", "grad_sq", "samples", "pairs"):
        assert a[k] == b[k]
    with pytest.raises(ValueError, match="cannot resume: the saved probe has seed"):
        Probe(net, data, batch_size=B, samples=4, seed=9).load_state_dict(probe.state_dict())


def test_resume_refuses_another_norm():
    net, data, opt = _setup()
    probe = Probe(net, data, batch_size=B, samples=2, norm="l2")
    probe.measure(opt, step=0)
    with pytest.raises(
        ValueError, match=r"cannot resume: the saved probe has norm = 'l2', this one None"
    ):
        Probe(net, data, batch_size=B, samples=2).load_state_dict(probe.state_dict())
    again = Probe(net, data, batch_size=B, samples=2, norm="l2")
    again.load_state_dict(probe.state_dict())
    assert again.records == probe.records and again.records[0]["norm"] == "l2"


def test_non_finite_gradients_raise():
    net, (x, y), opt = _setup()

    def loss_fn(out, t):  # (inf or nan in the data is refused by name when the probe is made)
        return torch.nn.functional.cross_entropy(out, t) * float("nan")

    probe = Probe(net, (x, y), batch_size=B, samples=2, loss_fn=loss_fn)
    with pytest.raises(
        NonFiniteGradientError, match="non-finite loss or gradient .* full-gradient pass"
    ):
        probe.measure(opt, step=0)
    assert all(torch.isfinite(p).all() for p in net.parameters())  # restored


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda net, d, o: Probe(net, (d[0][:0], d[1][:0])), "data is empty"),
        (lambda net, d, o: Probe(net, d, batch_size=N + 1), "fewer than one batch"),
        (
            lambda net, d, o: Probe(
                net, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(d[0][:0], d[1][:0]))
            ),
            "data is empty",
        ),
        (lambda net, d, o: Probe(net, d, samples=0), "samples must be an integer >= 1"),
        (lambda net, d, o: Probe(net, d, mode="test"), "mode must be 'train' or 'eval'"),
        (lambda net, d, o: Probe(net, d, samples=2, step_pairs=3), "step_pairs must be <= samples"),
        (
            lambda net, d, o: Probe(net, d, batch_size=B, samples=4).measure("adam", step=0),
            "optimizer must be a torch.optim.Optimizer instance or a lpcheck.methods.Method, got "
            "str",
        ),
        (
            lambda net, d, o: Probe(net, d, batch_size=B, samples=4).measure(
                torch.optim.SGD, step=0
            ),
            r"a class: construct it first",
        ),
        (
            lambda net, d, o: Probe(net, d, batch_size=B, samples=4).measure(
                LPSGDM(
                    [
                        {"params": list(net.parameters())[:2]},
                        {"params": list(net.parameters())[2:], "p": 3.0},
                    ],
                    lr=0.1,
                    p=6.0,
                ),
                step=0,
            ),
            "param groups disagree on p",
        ),
        (
            lambda net, d, o: Probe(net, d, batch_size=B, samples=4).measure(
                LPSGDM(list(net.parameters())[:2], lr=0.1, p=6.0), step=0
            ),
            "exactly the model's trainable parameters",
        ),
        (
            lambda net, d, o: Probe(net, d, batch_size=B, samples=4).measure(o, step=-1),
            "step must be an integer >= 0",
        ),
    ],
)
def test_bad_input(make, match):
    net, data, opt = _setup()
    with pytest.raises(ValueError, match=match):
        make(net, data, opt)


def test_map_style_dataset_gives_the_same_record():
    net, data, opt = _setup()
    a = Probe(net, data, batch_size=B, samples=3, seed=4).measure(opt, step=0)
    b = Probe(net, torch.utils.data.TensorDataset(*data), batch_size=B, samples=3, seed=4).measure(
        opt, step=0
    )
    assert a["samples"] == b["samples"] and a["loss"] == b["loss"]


# --- DDP: 2 processes (gloo, CPU) give the single-process constants -------------------------------


def _probed_run(model, data, opt):
    """Probe at steps 0, 2, 3 of a short run; every rank trains on the same batch, so DDP's mean
    gradient is the one-process gradient."""
    probe = Probe(model, data, batch_size=B, samples=5, seed=6)
    x, y = data
    for t in range(3):
        if t != 1:
            probe.measure(opt, step=t)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[:8]), y[:8]).backward()
        opt.step()
    probe.measure(opt, step=3)
    return probe.records


# the paper's path, a layer method (an ellipsoid) and the black box (a maximize fallback)
_DDP_OPTIMIZERS = {
    "lpsgdm": lambda net: LPSGDM(net.parameters(), lr=0.05, p=6.0, weight_decay=0.01, momentum=0.9),
    "adamw": lambda net: torch.optim.AdamW(net.parameters(), lr=0.01, weight_decay=0.1),
    "blackbox": lambda net: torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, maximize=True),
}


def _ddp_setup(kind):
    net, data, _ = _setup(seed=5)
    return net, data, _DDP_OPTIMIZERS[kind](net)


def _ddp_worker(rank, world, port, out_path, kind="lpsgdm"):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        net, data, opt = _ddp_setup(kind)
        ddp = torch.nn.parallel.DistributedDataParallel(net)
        records = _probed_run(ddp, data, opt)
        if rank == 0:
            torch.save(records, out_path)
        # as lpcheck's own _Dist.close: both ranks past their last collective, and the DDP wrapper
        # (which holds the group) gone, before the group is torn down. Without them a rank aborted
        # once in CI ("terminate called without an active exception", SIGABRT) under load
        torch.distributed.barrier()
        del ddp
        gc.collect()
    finally:
        torch.distributed.destroy_process_group()


def _single_process_records(kind):
    return _probed_run(*_ddp_setup(kind))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch.distributed is not available"
)
@pytest.mark.parametrize("kind", list(_DDP_OPTIMIZERS))
def test_two_process_gloo_run_equals_one_process(tmp_path, kind):
    out = tmp_path / "records.pt"
    sys.path.insert(0, os.path.dirname(__file__))  # the spawned workers import this module by name
    torch.multiprocessing.spawn(
        _ddp_worker, args=(2, _free_port(), str(out), kind), nprocs=2, join=True
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: float32 reductions depend on the thread count
    try:
        single = _single_process_records(kind)
    finally:
        torch.set_num_threads(threads)
    ddp = torch.load(out, weights_only=False)
    assert len(ddp) == len(single) == 3
    for a, b in zip(ddp, single):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-12) and a["grad_sq"] == pytest.approx(
            b["grad_sq"], rel=1e-12
        )
        for name in b["samples"]:
            np.testing.assert_allclose(
                a["samples"][name], b["samples"][name], rtol=1e-6, err_msg=name
            )
        assert [p["kind"] for p in a["pairs"]] == [p["kind"] for p in b["pairs"]]
        for pa, pb in zip(a["pairs"], b["pairs"]):
            for k in pb:
                if k != "kind":
                    assert pa[k] == pytest.approx(pb[k], rel=1e-6), k
    fa, fb = (estimate.fit_run(r, T=3, resamples=200) for r in (ddp, single))
    assert fa["assumption5"]["c1"] == pytest.approx(fb["assumption5"]["c1"], rel=1e-6)
    if kind == "lpsgdm":
        assert fa["assumption6"]["c1"] == pytest.approx(fb["assumption6"]["c1"], rel=1e-6)
    assert ddp[0]["method"] == {"lpsgdm": "lpsgdm", "adamw": "adam", "blackbox": "blackbox"}[kind]
    assert math.isfinite(fa["smoothness"]["L"]) and fa["smoothness"]["L"] == pytest.approx(
        fb["smoothness"]["L"], rel=1e-6
    )


def test_bfloat16_model_gets_float32_statistics():
    net, data, opt = _setup()
    net = net.to(torch.bfloat16)
    opt = LPSGDM(net.parameters(), lr=0.05, p=6.0)
    before = [t.clone() for t in net.state_dict().values()]
    rec = Probe(net, (data[0].to(torch.bfloat16), data[1]), batch_size=B, samples=3).measure(
        opt, step=0
    )
    assert all(math.isfinite(v) for vs in rec["samples"].values() for v in vs)
    assert all(
        torch.equal(a, b) for a, b in zip(before, net.state_dict().values())
    )  # restored exactly


# --- param groups that differ in weight decay, lr and momentum; a loss that can be negative -------

import copy  # noqa: E402


def _two_groups(net, decay_lr=0.05, other_lr=0.02):
    """The usual recipe: weight decay on the weights, none on biases and BatchNorm; here also
    another lr and beta."""
    decay = [p for p in net.parameters() if p.ndim >= 2]
    other = [p for p in net.parameters() if p.ndim < 2]
    return [
        {"params": decay, "weight_decay": 0.1, "lr": decay_lr},
        {"params": other, "weight_decay": 0.0, "lr": other_lr, "momentum": 0.5},
    ]


def test_step_pair_is_the_optimizers_own_step_with_per_group_decay_lr_and_momentum(monkeypatch):
    """The independent reference: opt.step() on a copy, with sample 0's block gradient as .grad."""
    net, data, _ = _setup()
    opt = LPSGDM(_two_groups(net), lr=0.05, p=6.0, momentum=0.9)
    _train(net, opt, data, 3)  # real momentum buffers
    probe = Probe(net, data, batch_size=B, samples=3, seed=3)
    gen_state = probe.generator.get_state()
    moved = []
    set_flat = grads.set_flat_params
    monkeypatch.setattr(
        grads, "set_flat_params", lambda ps, flat: (moved.append(flat.clone()), set_flat(ps, flat))
    )
    theta = grads.flat_params(grads.parameters(net))
    rec = probe.measure(opt, step=3)
    # the reference: a copy of model and optimizer takes the step with sample 0's gradient
    net2 = copy.deepcopy(net)
    opt2 = LPSGDM(_two_groups(net2), lr=0.05, p=6.0, momentum=0.9)
    opt2.load_state_dict(opt.state_dict())
    gen = torch.Generator()
    gen.set_state(gen_state)
    j = torch.randint(probe.n_blocks, (probe.samples,), generator=gen).tolist()[0]
    x, y = data
    opt2.zero_grad()
    torch.nn.functional.cross_entropy(net2(x[probe.blocks[j]]), y[probe.blocks[j]]).backward()
    opt2.step()
    actual = grads.flat_params(grads.parameters(net2))
    assert not torch.equal(moved[0], theta)
    torch.testing.assert_close(moved[0], actual, rtol=1e-6, atol=1e-7)
    step = (actual - theta).double()
    assert rec["pairs"][0]["dist_p"] == pytest.approx(float(lp.lp_norm(step, 6.0)), rel=1e-4)
    assert rec["lr"] == 0.05 and rec["weight_decay"] == [0.1, 0.0] and rec["beta"] == [0.9, 0.5]
    assert [g["params"] for g in rec["groups"]] == [
        sum(p.numel() for p in g["params"]) for g in opt.param_groups
    ]
    assert torch.equal(
        grads.flat_params(grads.parameters(net)), theta
    )  # and the model is left as it was


def test_per_group_momentum_statistics_use_each_groups_beta():
    net, data, _ = _setup()
    opt = LPSGDM(_two_groups(net), lr=0.05, p=6.0, momentum=0.9)
    _train(net, opt, data, 3)
    probe = Probe(net, data, batch_size=B, samples=4, seed=5, step_pairs=0)
    state = probe.generator.get_state()
    rec = probe.measure(opt, step=3)
    ps = grads.parameters(net)
    beta = torch.cat(
        [torch.full((p.numel(),), 0.9 if p.ndim >= 2 else 0.5, dtype=torch.float64) for p in ps]
    )
    gen = torch.Generator()
    gen.set_state(state)
    draws = torch.randint(probe.n_blocks, (probe.samples,), generator=gen).tolist()
    x, y = data

    def block(j):
        loss = torch.nn.functional.cross_entropy(net(x[probe.blocks[j]]), y[probe.blocks[j]])
        return grads.flat_grad(loss, ps).double()

    fg = sum(block(j) for j in range(probe.n_blocks)) / probe.n_blocks
    G = torch.stack([block(j) for j in draws])
    m = grads.flat_state(opt, ps, "momentum_buffer").double()
    V = lp.rescale(beta * m + (1 - beta) * G, 6.0, 1e-8)
    np.testing.assert_allclose(rec["samples"]["align_m"], ((V @ fg) / (fg @ fg)).numpy(), rtol=2e-5)
    np.testing.assert_allclose(
        rec["samples"]["moment_m"], (lp.lp_norm(V, 6.0, axis=1) ** 2).numpy(), rtol=2e-5
    )


def test_groups_that_differ_in_p_are_refused_with_the_reason():
    net, data, _ = _setup()
    groups = [
        {"params": list(net.parameters())[:2]},
        {"params": list(net.parameters())[2:], "p": 3.0},
    ]
    with pytest.raises(
        ValueError, match=r"param groups disagree on p .* one lp norm .* block-wise geometry"
    ):
        Probe(net, data, batch_size=B, samples=4).measure(LPSGDM(groups, lr=0.1, p=6.0), step=0)


def test_a_loss_that_can_be_negative_needs_its_lower_bound():
    net, data, opt = _setup()
    # f* >= -10
    shifted = lambda out, y: torch.nn.functional.cross_entropy(out, y) - 10.0  # noqa: E731
    probe = Probe(net, data, batch_size=B, samples=3, seed=1, loss_fn=shifted)
    state = probe.generator.get_state()
    with pytest.raises(ValueError, match=r"negative.*Probe\(\.\.\., loss_lower_bound"):
        probe.measure(opt, step=0)
    assert probe.records == [] and torch.equal(
        probe.generator.get_state(), state
    )  # nothing changed
    with pytest.raises(ValueError, match=r"loss_lower_bound = -5 is above the measured loss"):
        Probe(net, data, batch_size=B, samples=3, loss_fn=shifted, loss_lower_bound=-5.0).measure(
            opt, step=0
        )
    # K = 16: with K = 3 an honest interval for the alignment reaches below 0, and no cap exists to
    # compare; blocks of 6 give the 16 distinct mini-batches K = 16 needs (K <= the blocks)
    probe = Probe(
        net, data, batch_size=6, samples=16, seed=1, loss_fn=shifted, loss_lower_bound=-10.0
    )
    _train(net, opt, data, 4, probe=probe)
    out = probe.fit(T=4, resamples=200, lr_used=0.05)
    assert out["delta"] == pytest.approx(probe.records[0]["loss"] + 10.0)
    assert out["delta_from"]["loss_lower_bound"] == -10.0 and out["lr_max"] == 0.05
    assert (
        out["assumption5"]["lr_within_cap"] is not None
    )  # the cap (if any) is compared with the stated peak
