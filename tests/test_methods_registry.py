"""lpcheck.methods registry: METHODS, make, resolve (names, specs, and a user's classes from the
current directory), and the Method protocol's own refusals."""

import math
import sys
import textwrap

import pytest
import torch

from lpcheck import methods as M

USER_MODULE = textwrap.dedent('''
    import torch
    from lpcheck.methods import Method, Lp
    from lpcheck import checks


    class NormalizedSGD(Method):
        """d = g / ||g||_2 over all parameters (one short file: a new method)."""

        name = "nsgd"
        defaults = {"scale": 1.0}
        elementwise = False

        def _check(self, hp):
            return {"scale": checks.real("scale", hp["scale"], low=0.0, low_open=True)}

        def _update(self, grads, state, hp, *, batched, params):
            return [hp["scale"] * u for u in (-x for x in Lp(2.0).lmo(grads, batched=batched))], {}

        def norm(self, state=None, hp=None):
            return Lp(2.0)


    class PlainSGD(torch.optim.SGD):
        pass


    NOT_A_CLASS = 3
''')


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    name = f"user_methods_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


def test_methods_lists_every_builtin_with_one_line():
    assert list(M.METHODS) == list(M.BUILTINS) and len(M.METHODS) == 12
    assert all(isinstance(v, str) and v and "\n" not in v for v in M.METHODS.values())
    assert M.make("adam", eps=1e-6).hp["eps"] == 1e-6


@pytest.mark.parametrize(
    "spec,name,hp",
    [
        ("adam", "adam", {}),
        ("lpsgdm:p=4,momentum=0.95", "lpsgdm", {"p": 4.0, "momentum": 0.95}),
        ("lion:betas=(0.95,0.98)", "lion", {"betas": (0.95, 0.98)}),
        ("lpsgd:p=inf", "lpsgd", {"p": math.inf}),
        (
            "scion:solver=svd,vector=l2,radius=3",
            "scion",
            {"solver": "svd", "vector": "l2", "radius": 3.0},
        ),
        ("heavyball:nesterov=true", "heavyball", {"nesterov": True}),
        (" clipped:constrained=True, rho=2 ", "clipped", {"constrained": True, "rho": 2.0}),
    ],
)
def test_resolve_names_and_specs(spec, name, hp):
    m = M.resolve(spec)
    assert m.name == name and all(m.hp[k] == v for k, v in hp.items())


def test_resolve_keeps_instances_and_adds_keyword_hyperparameters():
    m = M.make("sgdm")
    assert M.resolve(m) is m
    assert M.resolve(m, momentum=0.5).hp["momentum"] == 0.5
    assert M.resolve("lpsgdm:p=3", p=5).hp["p"] == 5.0
    assert isinstance(
        M.resolve(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)), M.BlackBox
    )


def test_resolve_a_users_method_and_optimizer_from_the_current_directory(user_dir):
    path_before = list(sys.path)
    m = M.resolve(f"{user_dir}:NormalizedSGD:scale=2")
    assert sys.path == path_before, "sys.path is restored after the import"
    assert m.name == "nsgd" and m.hp == {"scale": 2.0}
    g = [torch.tensor([3.0, 4.0], dtype=torch.float64)]
    d, _ = m.update(g, m.init(g))
    torch.testing.assert_close(d[0], torch.tensor([1.2, 1.6], dtype=torch.float64))
    opt_cls = M.resolve(f"{user_dir}:PlainSGD:lr=0.5,momentum=0.9")
    assert isinstance(opt_cls, M.OptimizerClass) and opt_cls.kwargs == {"lr": 0.5, "momentum": 0.9}
    w = torch.nn.Parameter(torch.ones(2))
    opt = opt_cls.build([w])
    assert type(opt).__name__ == "PlainSGD" and opt.param_groups[0]["momentum"] == 0.9
    trained = M.as_optimizer(m, [w], lr=0.1)  # a user's method trains like a built-in
    w.grad = torch.tensor([3.0, 4.0])
    trained.step()
    torch.testing.assert_close(w.detach(), torch.tensor([1 - 0.1 * 1.2, 1 - 0.1 * 1.6]))


def test_resolve_a_file_path(user_dir, tmp_path):
    m = M.resolve(str(tmp_path / f"{user_dir}.py") + ":NormalizedSGD")
    assert m.name == "nsgd"


def test_resolve_classes_directly():
    assert isinstance(M.resolve(M.BUILTINS["adam"]), M.BUILTINS["adam"])
    assert M.resolve(torch.optim.AdamW).cls is torch.optim.AdamW
    assert M.resolve("torch.optim:AdamW:lr=0.01").kwargs == {"lr": 0.01}


@pytest.mark.parametrize(
    "spec,match",
    [
        ("adamx", r"unknown method 'adamx'; choose from lpsgd, lpsgdm"),
        ("", r"optimizer must be a method name"),
        (3, r"optimizer must be a method name"),
        ("lpsgd", r"lpsgd needs p \(no default\)"),
        ("lpsgd:p=1", r"p must be a real number in \[2, inf\]"),
        ("adam:betas=(0.9,1.0)", r"betas\[1\] must be"),
        ("adam:eta=1", r"adam has no hyperparameter eta"),
        ("adam:0.9", r"hyperparameters must be key=value pairs"),
        ("no_such_module_xyz:Opt", r"cannot import module 'no_such_module_xyz'"),
        ("torch.optim:NoSuchOptimizer", r"module 'torch.optim' has no attribute 'NoSuchOptimizer'"),
        (
            "math:pi",
            r"neither a lpcheck.methods.Method subclass nor a torch.optim.Optimizer subclass",
        ),
        ("missing_dir/file.py:Opt", r"does not exist"),
    ],
)
def test_resolve_refuses_by_name(spec, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        M.resolve(spec)


def test_resolve_refuses_a_user_attribute_that_is_no_class(user_dir):
    with pytest.raises(ValueError, match="neither a lpcheck.methods.Method subclass"):
        M.resolve(f"{user_dir}:NOT_A_CLASS")


def test_parse_hp_splits_at_commas_outside_brackets():
    assert M.parse_hp("betas=(0.9, 0.99),eps=1e-8,solver=svd") == {
        "betas": (0.9, 0.99),
        "eps": 1e-8,
        "solver": "svd",
    }
    assert M.parse_hp("") == {}


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda m: m.update([torch.zeros(3)], {}), r"state must hold \['momentum_buffer'\]"),
        (
            lambda m: m.update([torch.zeros(3)], {"momentum_buffer": [torch.zeros(2)]}),
            r"momentum_buffer'\]\[0\] must have shape",
        ),
        (
            lambda m: m.update([torch.zeros(3)], {"momentum_buffer": []}),
            r"must be a list of 1 tensors",
        ),
        (
            lambda m: m.update([torch.zeros(3, dtype=torch.int64)], {}),
            r"grads\[0\] must be a real floating-point tensor",
        ),
        (lambda m: m.update("g", {}), r"grads must be a tensor or a list of tensors"),
        (lambda m: m.update([], {}), r"grads must hold at least one tensor"),
        (lambda m: m.update([torch.zeros(3)], [1]), r"state must be a dict"),
        (
            lambda m: m.update(
                [torch.zeros(2, 3), torch.zeros(3)],
                m.init([torch.zeros(2, 3), torch.zeros(3)]),
                batched=True,
            ),
            r"batched=True needs every tensor to have the same leading \(seed\) axis",
        ),
        (
            lambda m: m.update([torch.zeros(3)], m.init([torch.zeros(3)]), hp={"momentum": 2}),
            r"momentum must be",
        ),
        (
            lambda m: m.update([torch.zeros(3)], m.init([torch.zeros(3)]), hp=[1]),
            r"hp must be a dict",
        ),
        (
            lambda m: m.update([torch.zeros(3)], m.init([torch.zeros(3)]), params=[torch.zeros(2)]),
            r"params and grads must have the same shapes",
        ),
        (
            lambda m: m.update([torch.zeros(3)], m.init([torch.zeros(3)]), batched="yes"),
            r"batched must be",
        ),
        (lambda m: m.init([1.0]), r"params must hold tensors"),
    ],
)
def test_the_protocol_refuses_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call(M.make("sgdm"))


def test_methods_that_need_theta_say_so():
    m = M.make("clipped", constrained=True)
    with pytest.raises(
        ValueError, match=r"clipped with these hyperparameters needs params \(theta\)"
    ):
        m.update([torch.zeros(2, 2)], m.init([torch.zeros(2, 2)]))


@pytest.mark.parametrize(
    "name,dtype,hp,match",
    [
        (
            "lpsgd",
            torch.float32,
            dict(p=4.0, eps=1e-46),
            r"eps = 1e-46 rounds to 0 in torch.float32",
        ),
        (
            "lpsgdm",
            torch.float32,
            dict(p=math.inf, eps=1e-40),
            r"eps = 1e-40 is too small for torch.float32",
        ),
        ("adam", torch.float16, dict(eps=1e-8), r"eps = 1e-08 rounds to 0 in torch.float16"),
    ],
)
def test_hyperparameters_that_vanish_in_the_gradients_dtype_are_refused(name, dtype, hp, match):
    m = M.make(name, **hp)
    g = [torch.ones(3, dtype=dtype)]
    with pytest.raises(ValueError, match=match):
        m.update(g, m.init(g))
