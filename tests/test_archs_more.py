"""piggyback, tsn and topdown (issue 5): parameter counts, shapes, what each can do, training.

Tiny configs (width 4, 1 residual block, 5 tasks, 32 px); the full one only for counting.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from safetensors.torch import load_file

from mixtask.errors import MixtaskError
from mixtask.nets.film import ModelConfig, count_parameters
from mixtask.nets.registry import architecture_class, build_model
from mixtask.training import setup_run, train
from mixtask.weights import load_weights
from tests.conftest import tiny_options

ARCHS = ("piggyback", "tsn", "topdown")
TINY = {arch: ModelConfig(num_tasks=5, width=4, res_blocks=1, arch=arch) for arch in ARCHS}
FULL_COUNTS = {"piggyback": 10_098_501, "tsn": 1_821_733, "topdown": 1_987_205}  # width 32, 5 blocks, 5 tasks
ONE_HOT = torch.eye(5)


def tiny(arch: str, seed: int = 0, **changes) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = ModelConfig(**(TINY[arch].to_json() | changes))
    return build_model(config).eval()


def module_of(arch: str):
    return importlib.import_module(architecture_class(arch).__module__)


# ----------------------------------------------------------------------------- all three


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("head", ["gated", "rgb"])
def test_parameter_count_formula_matches_the_tiny_network(arch, head):
    config = ModelConfig(num_tasks=5, width=4, res_blocks=1, arch=arch, head=head)
    assert count_parameters(build_model(config)) == module_of(arch).parameter_count(config)


@pytest.mark.parametrize("arch", ARCHS)
def test_parameter_count_formula_matches_the_full_network(arch):
    config = ModelConfig(num_tasks=5, width=32, res_blocks=5, arch=arch)
    assert count_parameters(build_model(config)) == module_of(arch).parameter_count(config) == FULL_COUNTS[arch]


@pytest.mark.parametrize(
    ("arch", "mixes", "continuous", "task_maps"),
    [("piggyback", False, False, False), ("tsn", True, True, False), ("topdown", True, True, True)],
)
def test_capabilities(arch, mixes, continuous, task_maps):
    cls = architecture_class(arch)
    assert (cls.mixes, cls.continuous, cls.task_maps) == (mixes, continuous, task_maps)
    assert isinstance(tiny(arch), cls)


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_shapes(arch):
    model, x = tiny(arch), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        for c in (torch.zeros(2, 5), ONE_HOT[[1, 3]]):
            assert model(x, c).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("size", [(1, 1), (5, 300), (17, 33)])
def test_any_size(arch, size):
    model = tiny(arch, head="rgb")
    with torch.no_grad():
        assert model.forward_any_size(torch.rand(1, 3, *size), ONE_HOT[[2]]).shape == (1, 3, *size)


@pytest.mark.parametrize("arch", ARCHS)
def test_weights_round_trip(arch, tmp_path):
    from mixtask.tasks import DEFAULT_TASK_SET
    from mixtask.weights import save_weights

    model = tiny(arch)
    path = save_weights(tmp_path / "w.safetensors", model, DEFAULT_TASK_SET)
    loaded, info = load_weights(path)
    assert type(loaded) is type(model) and info.config.arch == arch
    # built on the meta device and filled from the file: nothing left unset, the constants made on the CPU
    assert all(t.device.type == "cpu" for t in [*loaded.parameters(), *loaded.buffers()])
    x, c = torch.rand(1, 3, 32, 32), ONE_HOT[[0]]
    with torch.no_grad():
        assert torch.equal(loaded(x, c), model(x, c))


# ----------------------------------------------------------------------------- piggyback


def test_piggyback_masks_at_init_give_exactly_the_base_network():
    model, x = tiny("piggyback"), torch.rand(2, 3, 32, 32)
    assert all(torch.all(mask == 1e-2) for masks in model.masks for mask in masks)
    with torch.no_grad():
        base = model(x, torch.zeros(2, 5))
        for task in range(5):
            assert torch.equal(model(x, ONE_HOT[[task, task]]), base)


def test_piggyback_mask_below_the_threshold_zeroes_its_weight():
    model, x = tiny("piggyback"), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        model.masks[2][0][0, 0, 0, 0] = 5.1e-3  # still above 5e-3: kept
        assert torch.equal(model.task_weights(2)[0], model.trunk.convs[0].conv.weight)
        model.masks[2][0][0, 0, 0, 0] = 4.9e-3
        weight = model.task_weights(2)[0]
        assert weight[0, 0, 0, 0] == 0 and model.trunk.convs[0].conv.weight[0, 0, 0, 0] != 0
        assert torch.equal(weight.flatten()[1:], model.trunk.convs[0].conv.weight.flatten()[1:])
        assert not torch.equal(model(x, ONE_HOT[[2]]), model(x, torch.zeros(1, 5)))
        assert torch.equal(model(x, ONE_HOT[[1]]), model(x, torch.zeros(1, 5)))  # other tasks untouched


def test_piggyback_stage2_trains_only_the_chosen_tasks_masks_and_affines():
    model = tiny("piggyback").train()
    model.on_stage(2)
    model(torch.rand(2, 3, 32, 32), ONE_HOT[[3, 3]]).square().mean().backward()
    assert all(p.grad is None for p in model.trunk.parameters())
    assert all(mask.grad is not None and mask.grad.abs().sum() > 0 for mask in model.masks[3])  # straight through
    assert all(mask.grad is None for task in (0, 1, 2, 4) for mask in model.masks[task])
    assert model.affine_deltas.grad[3].abs().sum() > 0 and model.affine_deltas.grad[[0, 1, 2, 4]].abs().sum() == 0


def test_piggyback_stage1_trains_only_the_base():
    model = tiny("piggyback").train()
    model.on_stage(1)
    model(torch.rand(2, 3, 32, 32), torch.zeros(2, 5)).square().mean().backward()
    assert all(p.grad is not None for p in model.trunk.parameters())
    assert not any(p.requires_grad for p in model.masks.parameters()) and not model.affine_deltas.requires_grad


def test_piggyback_runs_each_sample_with_its_own_task():
    model, x = tiny("piggyback"), torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        model.masks[1][4].normal_(0.005, 0.01)  # make task 1 differ from the base
        together = model(x, torch.stack([ONE_HOT[1], torch.zeros(5), ONE_HOT[1]]))
        assert torch.equal(together[[0, 2]], model(x[[0, 2]], ONE_HOT[[1, 1]]))
        assert torch.equal(together[1], model(x[[1]], torch.zeros(1, 5))[0])
        assert not torch.equal(together[0], model(x[[0]], torch.zeros(1, 5))[0])


@pytest.mark.parametrize("c", [[1, 0, 1, 0, 0], [0.5, 0, 0, 0, 0], [0, 0, 0, 0.2, 0.8]])
def test_piggyback_cannot_mix(c):
    with pytest.raises(MixtaskError, match="piggyback cannot mix") as error:
        tiny("piggyback")(torch.rand(1, 3, 32, 32), torch.tensor([c], dtype=torch.float32))
    assert "\n" not in str(error.value)


# ----------------------------------------------------------------------------- tsn


def random_tsn(seed: int = 0) -> torch.nn.Module:
    model = tiny("tsn", seed)
    with torch.no_grad():
        model.adain.layers[0].weight.normal_(0, 0.3)  # zero at init (identity AdaIN): make tasks differ
    return model


def test_tsn_task_vector_changes_the_output_continuously():
    model, x = random_tsn(), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        zero, one, near = model(x, torch.zeros(1, 5)), model(x, ONE_HOT[[3]]), model(x, 1e-4 * ONE_HOT[[3]])
        mix = model(x, torch.tensor([[0, 1.0, 0, 1.0, 0]]))
    assert (one - zero).abs().max() > 1e-3 and (mix - one).abs().max() > 1e-3
    assert (near - zero).abs().max() < 1e-3 * (one - zero).abs().max() + 1e-6


def test_tsn_zero_vector_is_deterministic():
    model, x = random_tsn(), torch.rand(1, 3, 32, 32).expand(2, -1, -1, -1)
    with torch.no_grad():
        first, second = model(x, torch.zeros(2, 5)), model(x, torch.zeros(2, 5))
    assert torch.equal(first, second)
    assert torch.allclose(first[0], first[1], atol=1e-6)  # (batched kernels may round differently)


def test_tsn_task_codes_are_orthonormal_and_fixed():
    model = tiny("tsn")
    codes = model.mapping.codes
    assert torch.allclose(codes @ codes.T, torch.eye(5), atol=1e-5)
    assert torch.equal(codes, tiny("tsn", seed=7).mapping.codes)  # not drawn from the run's seed
    assert "mapping.codes" in model.state_dict() and not any(p is codes for p in model.parameters())


# ----------------------------------------------------------------------------- topdown


def random_topdown(seed: int = 0) -> torch.nn.Module:
    model = tiny("topdown", seed)
    with torch.no_grad():
        for conv in model.modulation:  # zero at init (BU2 = BU1): make tasks differ
            conv.weight.normal_(0, 0.5)
    return model


def uniform_map(c: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return c[:, :, None, None].expand(-1, -1, height, width).contiguous()


def test_topdown_untrained_modulation_is_the_identity():
    model, x = tiny("topdown"), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x, ONE_HOT[[0]]), model(x, ONE_HOT[[4]]))


def test_topdown_uniform_map_equals_the_vector():
    model, x = random_topdown(), torch.rand(2, 3, 32, 48)
    c = torch.tensor([[0.3, 0, 1, 0, 0], [0, 0, 0, 0, 0]])
    with torch.no_grad():
        assert torch.allclose(model(x, uniform_map(c, 32, 48)), model(x, c), atol=1e-5)
        odd, c = torch.rand(1, 3, 19, 23), c[:1]
        as_map = model.forward_any_size(odd, uniform_map(c, 19, 23))
        assert torch.allclose(as_map, model.forward_any_size(odd, c), atol=1e-5)


def test_topdown_half_and_half_map_does_each_task_on_its_half():
    model, x = random_topdown(), torch.rand(1, 3, 32, 64)
    a, b = ONE_HOT[[0]], ONE_HOT[[2]]
    halves = torch.cat([uniform_map(a, 32, 32), uniform_map(b, 32, 32)], dim=3)
    with torch.no_grad():
        out_a, out_b, out = model(x, a), model(x, b), model(x, halves)
    margin = 12  # the network's reach across the boundary
    for side, own, other in ((slice(0, 32 - margin), out_a, out_b), (slice(32 + margin, 64), out_b, out_a)):
        difference = (own[..., side] - other[..., side]).abs().mean()
        assert difference > 1e-2  # the two tasks really differ there
        # measured 0.01-0.04 over 10 seeds; with BU2's own InstanceNorm statistics it was 0.6-0.7
        assert (out[..., side] - own[..., side]).abs().mean() < 0.15 * difference


@pytest.mark.parametrize("shape", [(1, 4), (1, 5, 16, 16), (2, 5, 32, 32), (1, 5, 32)])
def test_topdown_rejects_task_inputs_of_the_wrong_shape(shape):
    with pytest.raises(MixtaskError, match="task input of shape"):
        tiny("topdown")(torch.rand(1, 3, 32, 32), torch.zeros(shape))


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("arch", ["tsn", "topdown"])
def test_two_training_steps_export_weights_that_reload(assets, tmp_path, arch):
    result = train(tiny_options(assets, tmp_path / "run", steps=2, arch=arch), quiet=True)
    model, info = load_weights(result.weights)
    assert info.config.arch == arch and type(model) is architecture_class(arch)
    assert info.task_set.mixes  # Method 3's stage 2 trained the synthesised mixes


def test_piggyback_plan_trains_the_base_then_the_tasks(assets, tmp_path):
    run = setup_run(tiny_options(assets, tmp_path / "run", steps=10, arch="piggyback", mix_method=1), no_ddp())
    plan = run.plan
    assert plan.stage1_steps == 5 and (plan.stage_at(4), plan.stage_at(5)) == (1, 2)
    assert [job.name for job in plan.jobs(1)] == ["recon"]
    assert [job.name for job in plan.jobs(2)] == ["inpaint", "denoise", "seg", "style1"]


def test_piggyback_training_leaves_the_base_unchanged_in_stage2(assets, tmp_path):
    out = tmp_path / "run"
    result = train(tiny_options(assets, out, steps=2, arch="piggyback", mix_method=1), quiet=True)
    model, info = load_weights(result.weights)
    assert type(model) is architecture_class("piggyback") and info.task_set.mixes == ()
    stage1, final = load_file(out / "stage1.safetensors"), load_file(result.weights)
    torch.manual_seed(0)  # the run's seed: its initial weights
    initial = build_model(info.config).state_dict()
    base = [key for key in final if key.startswith("trunk.")]
    assert base and all(torch.equal(stage1[key], final[key]) for key in base)
    assert any(not torch.equal(stage1[key], initial[key]) for key in base)  # stage 1 trained the base
    task_keys = [key for key in final if not key.startswith("trunk.")]
    assert all(torch.equal(stage1[key], initial[key]) for key in task_keys)  # ... and nothing else
    assert any(not torch.equal(final[key], stage1[key]) for key in task_keys)  # stage 2 trained masks/affines


def no_ddp():
    from mixtask.training.distributed import DistContext

    return DistContext()
