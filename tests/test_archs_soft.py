"""Soft sharing (cross-stitch, Misra et al. 2016) and task attention (MTAN, Liu et al. 2019): sizes, shapes,
what strengths and mixes mean in each, and that they train, export and translate like the others (issue 17)."""

from __future__ import annotations

import importlib
from dataclasses import replace

import pytest
import torch

from mixtask.inference.translator import Translator
from mixtask.nets.crossstitch import OWN_SHARE
from mixtask.nets.film import ModelConfig, count_parameters
from mixtask.nets.registry import architecture_class, build_model
from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.training import train
from mixtask.weights import WeightsInfo, load_weights
from tests.conftest import tiny_options

ARCHS = ("crossstitch", "mtan")
TINY = ModelConfig(num_tasks=5, width=4, res_blocks=1)
FULL_COUNTS = {"crossstitch": 10_107_066, "mtan": 3_926_597}  # width 32, 5 blocks, 5 tasks, gated head
PAPERS = {"crossstitch": "arxiv.org/abs/1604.03539", "mtan": "arxiv.org/abs/1803.10704"}


def tiny(arch: str, seed: int = 0) -> torch.nn.Module:
    """A tiny network with every parameter randomised a little, so that every column and mask matters."""
    torch.manual_seed(seed)
    model = build_model(replace(TINY, arch=arch)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    return model


def one_hot(index: int | None, strength: float = 1.0) -> torch.Tensor:
    c = torch.zeros(1, 5)
    if index is not None:
        c[0, index] = strength
    return c


@pytest.mark.parametrize("arch", ARCHS)
def test_docstring_cites_the_paper_and_flags_are_declared(arch):
    cls = architecture_class(arch)
    assert PAPERS[arch] in importlib.import_module(cls.__module__).__doc__
    assert (cls.mixes, cls.continuous, cls.task_maps) == (True, True, False)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(
    "config", [TINY, replace(TINY, head="rgb", num_tasks=2), replace(TINY, width=32, res_blocks=5)]
)
def test_closed_form_parameter_count_matches_the_module(arch, config):
    config = replace(config, arch=arch)
    formula = importlib.import_module(architecture_class(arch).__module__).parameter_count(config)
    assert formula == count_parameters(build_model(config))


@pytest.mark.parametrize("arch", ARCHS)
def test_full_width_counts_are_pinned(arch):
    config = ModelConfig(num_tasks=5, arch=arch)
    assert count_parameters(build_model(config)) == FULL_COUNTS[arch]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("size", [(1, 1), (17, 33), (32, 32)])
def test_shapes_at_any_size(arch, size):
    model = tiny(arch)
    y = model.forward_any_size(torch.rand(2, 3, *size), torch.rand(2, 5))
    assert y.shape == (2, 3, *size) and torch.isfinite(y).all()


def test_cross_stitch_units_start_near_identity():
    stitches = build_model(replace(TINY, arch="crossstitch")).stitches.detach()
    columns, layers = 6, 7  # recon + 5 tasks; 3 encoder + 2 residual + 2 decoder normed layers
    assert stitches.shape == (layers, columns, columns)  # one K x K unit per normed layer
    assert torch.allclose(stitches.diagonal(dim1=1, dim2=2), torch.full((layers, columns), OWN_SHARE))
    assert torch.allclose(stitches.sum(dim=2), torch.ones(layers, columns))  # 0.1 shared out evenly


def test_cross_stitch_strength_interpolates_columns_and_a_mix_averages_them():
    model, x = tiny("crossstitch"), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        recon, task1, task3 = model(x, one_hot(None)), model(x, one_hot(1)), model(x, one_hot(3))
        torch.testing.assert_close(model(x, one_hot(1, 0.6)), 0.6 * task1 + 0.4 * recon)
        mix = one_hot(1) + one_hot(3)
        torch.testing.assert_close(model(x, mix), 0.5 * task1 + 0.5 * task3)
    assert (task1 - recon).abs().max() > 1e-3


def test_cross_stitch_columns_share_only_through_the_units():
    model, x = tiny("crossstitch"), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        before = model(x, one_hot(0))
        model.columns[3].convs[0].conv.weight.add_(1.0)  # column 3 is task 2's
        shared = model(x, one_hot(0))
        model.stitches.copy_(torch.eye(6).repeat(len(model.stitches), 1, 1))
        alone = model(x, one_hot(0))
        model.columns[3].convs[0].conv.weight.sub_(1.0)
        torch.testing.assert_close(model(x, one_hot(0)), alone)  # no stitching: column 3 does not reach task 0
    assert (shared - before).abs().max() > 1e-4  # stitched: it does


def test_mtan_uses_a_task_attention_only_at_its_strength():
    model, x = tiny("mtan"), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        recon, task2 = model(x, one_hot(None)), model(x, one_hot(2))
        for layer in model.attention:
            layer[3].convs[0].weight.add_(1.0)  # column 3: task 2's masks
        torch.testing.assert_close(model(x, one_hot(None)), recon)  # c = 0 runs the recon masks only
        assert (model(x, one_hot(2)) - task2).abs().max() > 1e-4
        half, near = model(x, one_hot(2, 0.5)), model(x, one_hot(2, 0.51))
    assert (half - near).abs().max() < (half - recon).abs().max()  # continuous in the strength


@pytest.mark.parametrize("arch", ARCHS)
def test_translator_takes_mixes_and_strengths(arch):
    info = WeightsInfo(None, replace(TINY, arch=arch), DEFAULT_TASK_SET, {}, {})
    translator = Translator(tiny(arch), info, precision="fp32")
    x = torch.rand(1, 3, 20, 28)
    y = translator.translate_tensor(x, "seg=1,style1=0.5")
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_two_training_steps_export_weights_that_reload(assets, tmp_path, arch):
    result = train(tiny_options(assets, tmp_path / "run", steps=2, arch=arch), quiet=True)
    model, info = load_weights(result.weights)
    assert info.config.arch == arch and type(model) is architecture_class(arch)
    assert info.task_set.mixes  # Method 3's stage 2 trained the synthesised mixes
