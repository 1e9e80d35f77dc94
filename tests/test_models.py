"""lpcheck.models: the CIFAR architectures of the paper's experiments."""

import pytest
import torch

from lpcheck import models


@pytest.mark.parametrize(
    "name,count", [("resnet18", 11_173_962), ("resnet50", 23_520_842), ("vgg11", 9_231_114)]
)
def test_parameter_counts_match_the_published_cifar_models(name, count):
    assert sum(p.numel() for p in models.build(name).parameters()) == count


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_small_width_forward_and_classes(name):
    model = models.build(name, num_classes=100, width=0.125)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 100)


def test_resnet_stem_is_3x3_without_maxpool():
    m = models.resnet18()
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    assert not any(isinstance(x, torch.nn.MaxPool2d) for x in m.modules())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(name="resnet34"), "model must be one of"),
        (dict(name="vgg11", num_classes=0), "num_classes must be"),
        (dict(name="resnet18", width=0), "width must be a finite real number > 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.build(**kwargs)


def test_numbers_torch_accepts_are_accepted():
    import numpy as np

    m = models.build("vgg11", num_classes=np.int64(7), width=np.float32(0.125))
    assert m.classifier.out_features == 7


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: models.build("resnet18", width=1e9),
            "width = 1000000000.0 and num_classes = 10 make a model with",
        ),
        (lambda: models.build(["resnet18"]), "model must be one of"),  # was: TypeError (unhashable)
        (lambda: models.resnet18(num_classes=2.5), "num_classes must be an integer"),
        (lambda: models.VGG("vgg19"), "name must be one of"),
        (lambda: models.build("resnet18", width=float("inf")), "width must be a finite"),
    ],
)
def test_bad_arguments_are_named_before_any_allocation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
