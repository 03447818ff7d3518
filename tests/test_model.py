"""The network: pinned parameter counts, identity FiLM at init, any input size, the output head."""

from dataclasses import replace

import pytest
import torch

from mixtask.nets.film import MixNet, ModelConfig, count_parameters, padding_to_multiple


@pytest.mark.parametrize(("tasks", "params"), [(5, 1_695_235), (6, 1_698_435)])
def test_paper_parameter_counts(tasks, params):
    assert count_parameters(MixNet(ModelConfig(num_tasks=tasks, head="rgb"))) == params


def test_gated_head_adds_two_output_channels():
    # the 9x9 output conv from 32 channels gets 2 more filters: 2 * (32 * 81 + 1) parameters
    assert count_parameters(MixNet(ModelConfig(num_tasks=5))) == 1_695_235 + 2 * (32 * 81 + 1)


def test_weights_written_before_heads_keep_the_rgb_head():
    old = ModelConfig(num_tasks=5, head="rgb").to_json()
    del old["head"]
    assert ModelConfig.from_json(old).head == "rgb"
    assert ModelConfig.from_json(ModelConfig(num_tasks=5).to_json()).head == "gated"


def test_film_layout_matches_design():
    model = MixNet(ModelConfig(num_tasks=5))
    assert len(model.norms) == 15 and model.film_channels == 1600
    assert model.film.layers[-1].out_features == 3200


def test_generator_depth_is_configurable():
    model = MixNet(ModelConfig(num_tasks=5, film_layers=3, film_hidden=64))
    assert [layer.out_features for layer in model.film.layers] == [64, 64, 3200]


def test_untrained_generator_is_identity_film():
    model = MixNet(ModelConfig(num_tasks=3, width=4, res_blocks=1))
    for gamma, beta in model.film_params(torch.rand(2, 3)):
        assert torch.equal(gamma, torch.ones_like(gamma)) and torch.equal(beta, torch.zeros_like(beta))


def test_task_vector_changes_output():
    torch.manual_seed(0)
    model = MixNet(ModelConfig(num_tasks=2, width=4, res_blocks=1)).eval()
    torch.nn.init.normal_(model.film.layers[0].weight)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a, b = model(x, torch.tensor([[0.0, 0.0]])), model(x, torch.tensor([[1.0, 0.0]]))
    assert (a - b).abs().max() > 1e-3


@pytest.mark.parametrize("size", [(1, 1), (5, 300), (17, 33), (32, 32)])
def test_any_input_size(size):
    model = MixNet(ModelConfig(num_tasks=1, width=4, res_blocks=1)).eval()
    with torch.no_grad():
        out = model.forward_any_size(torch.rand(1, 3, *size), torch.zeros(1, 1))
    assert out.shape == (1, 3, *size)


def test_padding_rule():
    assert [padding_to_multiple(s) for s in (1, 16, 17, 20, 31)] == [15, 0, 3, 0, 1]


def test_network_is_blind_to_global_brightness_and_contrast():
    """A property of the specified design, pinned so a change to it is deliberate.

    The first InstanceNorm removes any per-channel offset and any global gain of the input
    (the conv is linear and IN subtracts the mean and divides by the std), so every layer
    after it sees the same features for x and a * x + c. Reconstruction therefore cannot
    recover an image's absolute brightness/contrast; see weights/README.md.
    """
    torch.manual_seed(0)
    model = MixNet(ModelConfig(num_tasks=2, width=8, res_blocks=1, head="rgb")).eval()
    torch.nn.init.normal_(model.film.layers[0].weight)
    x = torch.rand(1, 3, 32, 32)
    shifted = 0.5 * x + torch.tensor([0.1, 0.3, 0.2]).view(1, 3, 1, 1)
    c = torch.tensor([[1.0, 0.0]])
    with torch.no_grad():
        assert torch.allclose(model(x, c), model(shifted, c), atol=1e-3)


def _gated_model(gate_bias: float, blend_bias: float) -> MixNet:
    torch.manual_seed(0)
    model = MixNet(ModelConfig(num_tasks=2, width=8, res_blocks=1)).eval()
    torch.nn.init.normal_(model.film.layers[0].weight)
    with torch.no_grad():
        model.output.conv.bias[3:] = torch.tensor([gate_bias, blend_bias])
    return model


def test_gated_head_can_pass_the_input_through():
    x, c = torch.rand(1, 3, 32, 32), torch.tensor([[1.0, 0.0]])
    with torch.no_grad():
        assert torch.allclose(_gated_model(30.0, 0.0)(x, c), x, atol=1e-6)


def test_gated_head_follows_the_input_exposure_when_renormalising():
    """With the blend on, generated colours follow a * x + b: what the rgb head cannot do."""
    model = _gated_model(-30.0, 30.0)
    x, c = torch.rand(1, 3, 32, 32), torch.tensor([[1.0, 0.0]])
    offset = torch.tensor([0.1, 0.3, 0.2]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(0.5 * x + offset, c), 0.5 * model(x, c) + offset, atol=1e-3)


def test_local_fill_keeps_kept_pixels_and_fills_a_hole_from_around_it():
    from mixtask.nets.film import fill_levels, local_fill

    torch.manual_seed(0)
    x, fallback = torch.rand(2, 3, 64, 48), torch.full((2, 3, 1, 1), 0.5)
    torch.testing.assert_close(local_fill(x, torch.ones(2, 1, 64, 48), fallback), x, rtol=0, atol=0)
    torch.testing.assert_close(local_fill(x, torch.zeros(2, 1, 64, 48), fallback), fallback.expand_as(x))
    # a hole in a left-to-right ramp: filled with the ramp's values, not its mean or the hole's colour
    ramp = torch.linspace(0, 1, 48).expand(1, 3, 64, 48).clone()
    keep = torch.ones(1, 1, 64, 48)
    keep[..., 24:40, 16:32] = 0
    damaged = torch.where(keep.bool(), ramp, torch.tensor(1.0))
    filled = local_fill(damaged, keep, fallback[:1])
    hole = ~keep.bool().expand_as(ramp)
    assert (filled - ramp)[hole].abs().mean() < 0.03 < (0.5 - ramp)[hole].abs().mean()
    assert [fill_levels(side, side) for side in (32, 256, 512, 1024)] == [1, 4, 5, 6]


def test_the_gated_fill_head_has_the_gated_heads_parameters_and_fills_from_around_a_hole():
    gated = _gated_model(-30.0, 30.0)  # gate shut, blend on: the generated colour everywhere
    filling = MixNet(replace(gated.config, head="gated-fill")).eval()
    filling.load_state_dict(gated.state_dict())  # the same parameters: --init warm-starts one from the other
    x, c = torch.rand(1, 3, 32, 32), torch.tensor([[1.0, 0.0]])
    with torch.no_grad():
        filling.output.conv.weight[:3] = 0
        filling.output.conv.bias[:3] = 0  # colour 0: the base itself
        # the gate keeps nothing, so the fill falls back to the input's mean, which the gated head adds too
        torch.testing.assert_close(filling(x, c), x.mean((2, 3), keepdim=True).expand_as(x))
        filling.output.conv.bias[3] = 30.0  # everything kept: the input passes through
        torch.testing.assert_close(filling(x, c), x, atol=1e-6, rtol=0)


def test_the_context_branch_starts_as_the_network_without_it_and_works_at_a_32nd_of_any_size():
    torch.manual_seed(0)
    plain = MixNet(ModelConfig(num_tasks=1, width=4, res_blocks=2, head="rgb")).eval()
    with_context = MixNet(ModelConfig(num_tasks=1, width=4, res_blocks=2, head="rgb", context=2)).eval()
    missing, unexpected = with_context.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(key.startswith("context.") for key in missing)
    x, c = torch.rand(2, 3, 64, 96), torch.zeros(2, 1)
    with torch.no_grad():
        torch.testing.assert_close(with_context(x, c), plain(x, c), rtol=0, atol=0)
        torch.nn.init.normal_(with_context.context.out.weight, std=0.5)
        assert (with_context(x, c) - plain(x, c)).abs().max() > 1e-3
        branch = with_context.context
        for side, cells in ((16, 2), (100, 13), (64, 8)):  # bottleneck side -> context cells (ceil of side / 8)
            summary = branch.summary(torch.rand(1, 16, side, side + 3), branch.film_params(c[:1]))
            assert summary.shape == (1, 16, cells, -(-(side + 3) // 8))
        out = with_context.forward_any_size(torch.rand(1, 3, 5, 7), c[:1])  # a 1x1 context grid
        assert out.shape == (1, 3, 5, 7) and torch.isfinite(out).all()


def test_the_context_backbone_starts_at_zero_stays_frozen_and_is_checked_in_the_config():
    torch.manual_seed(0)
    config = ModelConfig(num_tasks=1, width=4, res_blocks=2, head="rgb", context=1)
    plain, seeing = MixNet(config), MixNet(replace(config, context_backbone="efficientnet-lite0"))
    missing, unexpected = seeing.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(key.startswith(("context.backbone.", "context.project.")) for key in missing)
    torch.nn.init.normal_(plain.context.out.weight, std=0.5)
    seeing.context.out.weight.data.copy_(plain.context.out.weight)
    x, c = torch.rand(2, 3, 64, 96), torch.zeros(2, 1)
    seeing.train()
    assert not seeing.context.backbone.training  # its BatchNorms keep their statistics
    assert not any(p.requires_grad for p in seeing.context.backbone.parameters())
    with torch.no_grad():
        torch.testing.assert_close(seeing(x, c), plain.train()(x, c), rtol=0, atol=0)
        torch.nn.init.normal_(seeing.context.project.weight, std=0.5)
        h, film, features = torch.rand(2, 16, 16, 24), plain.context.film_params(c), [torch.rand(2, 320, 2, 3)]
        assert (seeing.context.summary(h, film, features) - plain.context.summary(h, film)).abs().max() > 1e-3
    assert [f.shape for f in seeing.context.image_features(x)] == [(2, 320, 2, 3)]
    for bad in ({"context_backbone": "resnet"}, {"context_backbone": "efficientnet-lite0", "context": 0}):
        with pytest.raises(ValueError, match="context_backbone"):
            ModelConfig.from_json(ModelConfig(num_tasks=5, context=1).to_json() | bad)


def test_the_backbones_finer_scales_start_at_zero_and_reach_the_bottleneck():
    torch.manual_seed(0)
    config = ModelConfig(num_tasks=1, width=4, res_blocks=2, head="rgb", context=1)
    config = replace(config, context_backbone="efficientnet-lite0")
    coarse, fine = MixNet(config).eval(), MixNet(replace(config, context_scales=3)).eval()
    torch.nn.init.normal_(coarse.context.project.weight, std=0.5)
    torch.nn.init.normal_(coarse.context.out.weight, std=0.5)
    missing, unexpected = fine.load_state_dict(coarse.state_dict(), strict=False)
    assert not unexpected and missing and all(key.startswith("context.skips.") for key in missing)
    x, c = torch.rand(2, 3, 64, 96), torch.zeros(2, 1)
    shapes = [(2, 320, 2, 3), (2, 112, 4, 6), (2, 40, 8, 12)]  # 1/32, 1/16, 1/8
    assert [f.shape for f in fine.context.image_features(x)] == shapes
    with torch.no_grad():
        torch.testing.assert_close(fine(x, c), coarse(x, c), rtol=0, atol=0)  # --init from 1 scale is exact
        for skip in fine.context.skips:
            torch.nn.init.normal_(skip.weight, std=0.5)
        assert (fine(x, c) - coarse(x, c)).abs().max() > 1e-3
        assert fine.forward_any_size(torch.rand(1, 3, 5, 7), c[:1]).shape == (1, 3, 5, 7)  # grids of one cell
        inferred = fine(x, c)  # projected, then resized
    with torch.enable_grad():
        trained = fine(x, c)  # resized, then projected: the same map
    torch.testing.assert_close(trained.detach(), inferred, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="context_scales"):
        ModelConfig.from_json(ModelConfig(num_tasks=5, context=1).to_json() | {"context_scales": 2})
    with pytest.raises(ValueError, match="context_scales"):
        ModelConfig.from_json(config.to_json() | {"context_scales": 4})


def test_the_context_branch_is_in_the_config_and_old_files_have_none():
    assert ModelConfig.from_json(ModelConfig(num_tasks=5, context=3).to_json()).context == 3
    old = ModelConfig(num_tasks=5).to_json()
    del old["context"]
    assert ModelConfig.from_json(old).context == 0
    with pytest.raises(ValueError, match="context"):
        ModelConfig.from_json(ModelConfig(num_tasks=5).to_json() | {"context": 99})
    branch = MixNet(ModelConfig(num_tasks=5, context=3)).context
    assert len(branch.convs) == 3 and branch.film.layers[-1].out_features == 2 * 3 * 128
