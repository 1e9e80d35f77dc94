"""lpcheck.models: the CIFAR architectures of the paper's experiments."""

import pytest
import torch

from lpcheck import models


@pytest.mark.parametrize("name,count", [("resnet18", 11_173_962), ("resnet50", 23_520_842), ("vgg11", 9_231_114)])
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


@pytest.mark.parametrize("kwargs,match", [(dict(name="resnet34"), "model must be one of"),
                                          (dict(name="vgg11", num_classes=0), "num_classes must be"),
                                          (dict(name="resnet18", width=0), "width must be > 0")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.build(**kwargs)
