"""VGG16 and EfficientNet-Lite0 loaders: formats, input conventions, errors, shapes.

Tiny fake weight files are written on the fly; the real shared backbones are used only by the
tests marked optional, which skip when ../shared/data/backbones is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from mixtask.backbones import efficientnet_lite, vgg
from mixtask.backbones.efficientnet_lite import (
    LITE0_BLOCKS,
    SCALE_TAPS,
    EfficientNetLite,
    EfficientNetTrunk,
    load_efficientnet_lite0,
    load_trunk_weights,
)
from mixtask.backbones.files import freeze
from mixtask.backbones.vgg import CaffeNormalize, ImageNetNormalize, VGGFeatures, load_vgg, vgg16_layers
from mixtask.errors import MixtaskError
from tests.fakes import TINY_EFFICIENTNET_BLOCKS, tiny_efficientnet, tiny_vgg, tiny_vgg_state

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_VGG = SHARED / "backbones" / "vgg16-features.safetensors"
REAL_EFFICIENTNET = SHARED / "backbones" / "efficientnet-lite0.safetensors"
CAFFE_METADATA = {
    "input_convention": "NCHW float32, BGR channel order, 0-255 scale, minus per-channel mean (Caffe style)",
    "perceptual_layers": json.dumps({"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}),
}


@pytest.fixture
def caffe_file(tmp_path: Path) -> Path:
    """Like the shared file: bare `N.weight` keys, Caffe metadata, tiny widths."""
    path = tmp_path / "vgg-caffe.safetensors"
    save_file(tiny_vgg_state(), str(path), metadata=CAFFE_METADATA)
    return path


@pytest.fixture
def torchvision_file(tmp_path: Path) -> Path:
    """Like torchvision's vgg16 .pth: `features.N.*` keys plus classifier keys to ignore."""
    path = tmp_path / "vgg16-tiny.pth"
    state = tiny_vgg_state(prefix="features.") | {"classifier.0.weight": torch.zeros(2, 2)}
    torch.save(state, path)
    return path


def test_caffe_file_loads_with_caffe_convention(caffe_file: Path):
    model = load_vgg(caffe_file)
    assert isinstance(model.normalize, CaffeNormalize)
    assert set(model(torch.rand(1, 3, 32, 32))) == {"relu1_2", "relu2_2", "relu3_3", "relu4_3"}


def test_torchvision_file_loads_with_imagenet_convention(torchvision_file: Path):
    model = load_vgg(torchvision_file)
    assert isinstance(model.normalize, ImageNetNormalize)
    assert model(torch.rand(1, 3, 32, 32))["relu4_3"].shape == (1, 8, 4, 4)


def test_same_weights_differ_only_by_convention(caffe_file: Path, torchvision_file: Path):
    x = torch.rand(1, 3, 16, 16)
    caffe, imagenet = load_vgg(caffe_file)(x)["relu1_2"], load_vgg(torchvision_file)(x)["relu1_2"]
    assert not torch.allclose(caffe, imagenet)


def test_real_shaped_torchvision_state_dict(tmp_path: Path):
    path = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in vgg16_layers().state_dict().items()}, path)
    model = load_vgg(path)
    assert model(torch.rand(1, 3, 16, 16))["relu4_3"].shape == (1, 512, 2, 2)


def test_caffe_normalisation_values():
    white_red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)  # pure red in RGB
    out = CaffeNormalize()(white_red).flatten().tolist()
    assert out == pytest.approx([-104.00699, -116.66877, 255 - 122.67892])  # BGR order


def test_imagenet_normalisation_values():
    out = ImageNetNormalize()(torch.full((1, 3, 1, 1), 0.485)).flatten()
    assert out[0].item() == pytest.approx(0.0, abs=1e-6)


def test_forward_stops_after_deepest_needed_layer():
    model = tiny_vgg()
    calls = []
    model.features[5].register_forward_hook(lambda *_: calls.append(1))  # conv2_1
    out = model(torch.rand(1, 3, 16, 16), layers=["relu1_2"])
    assert list(out) == ["relu1_2"] and not calls


def test_vgg_is_frozen_and_stays_in_eval():
    model = tiny_vgg().train()
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_injected_network_is_truncated_to_deepest_layer():
    model = VGGFeatures(vgg16_layers((2, 2, 2, 2)), {"relu2_2": 8}, ImageNetNormalize())
    assert len(model.features) == 9


def test_missing_vgg_says_how_to_get_one(monkeypatch, tmp_path: Path):
    monkeypatch.delenv(vgg.VGG_ENV, raising=False)
    monkeypatch.setattr(vgg, "SHARED_VGG", tmp_path / "absent.safetensors")
    with pytest.raises(MixtaskError, match=r"--vgg PATH.*vgg16-features\.safetensors.*torchvision"):
        load_vgg(None)


def test_env_variable_names_the_vgg(monkeypatch, caffe_file: Path):
    monkeypatch.setenv(vgg.VGG_ENV, str(caffe_file))
    assert isinstance(load_vgg().normalize, CaffeNormalize)


@pytest.mark.parametrize(
    "content",
    [b"not a weights file at all", b"\x10\x00\x00\x00\x00\x00\x00\x00{broken json header"],
    ids=["garbage", "truncated-safetensors"],
)
def test_bad_vgg_file_is_named(tmp_path: Path, content: bytes):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(MixtaskError, match=r"bad\.pth"):
        load_vgg(path)


def test_missing_vgg_file_is_named(tmp_path: Path):
    with pytest.raises(MixtaskError, match=r"absent\.pth not found"):
        load_vgg(tmp_path / "absent.pth")


def test_wrong_tensors_are_an_error(tmp_path: Path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2)}, str(path))
    with pytest.raises(MixtaskError, match=r"other\.safetensors does not hold VGG16"):
        load_vgg(path)


def test_pickled_objects_are_refused(tmp_path: Path):
    path = tmp_path / "pickle.pth"
    torch.save({"model": torch.nn.Linear(2, 2)}, path)  # a module, not a state dict
    with pytest.raises(MixtaskError, match=r"pickle\.pth"):
        load_vgg(path)


@pytest.mark.skipif(not REAL_VGG.is_file(), reason="shared VGG16 file not present")
def test_real_shared_vgg():
    model = load_vgg(REAL_VGG)
    assert isinstance(model.normalize, CaffeNormalize)
    out = model(torch.rand(1, 3, 32, 32))
    assert out["relu4_3"].shape == (1, 512, 4, 4) and out["relu4_3"].abs().sum() > 0


# EfficientNet-Lite0


def test_efficientnet_lite0_features_are_1280d():
    model = freeze(EfficientNetLite(LITE0_BLOCKS))
    assert model(torch.rand(2, 3, 96, 128)).shape == (2, 1280)  # resized to 224 inside


def test_tiny_efficientnet_fake():
    model = tiny_efficientnet()
    assert model(torch.rand(3, 3, 40, 40)).shape == (3, model.feature_dim)


@pytest.mark.skipif(not REAL_EFFICIENTNET.is_file(), reason="needs ../shared/data/backbones")
def test_trunk_features_in_tiles_are_the_whole_images(monkeypatch):
    """The context branch's backbone runs large images in tiles; with the real weights (their receptive field
    is 851 px) the halo makes the tiles' cells the untiled ones, a small halo would not."""
    trunk = load_trunk_weights(EfficientNetTrunk(), REAL_EFFICIENTNET)
    x = torch.rand(1, 3, 700, 100, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = trunk.features(x, tile=1024, taps=SCALE_TAPS)
        assert [f.shape for f in whole] == [(1, 320, 22, 4), (1, 112, 44, 7), (1, 40, 88, 13)]
        for tiled, untiled in zip(trunk.features(x, tile=64, taps=SCALE_TAPS), whole):
            torch.testing.assert_close(tiled, untiled, rtol=0, atol=1e-5)
        monkeypatch.setattr(efficientnet_lite, "TRUNK_HALO", 32)
        assert (trunk.features(x, tile=64)[0] - whole[0]).abs().max() > 1e-2


def test_trunk_weights_must_be_lite0(tmp_path: Path):
    path = tmp_path / "tiny.safetensors"
    save_file(tiny_efficientnet().state_dict(), str(path), metadata=blocks_metadata(TINY_EFFICIENTNET_BLOCKS))
    with pytest.raises(MixtaskError, match="not Lite0's"):
        load_trunk_weights(EfficientNetTrunk(), path)


def blocks_metadata(blocks) -> dict[str, str]:
    """The `blocks` metadata entry, as the shared EfficientNet file writes it."""
    fields = ["expand_ratio", "kernel", "stride", "in_ch", "out_ch"]
    return {"blocks": json.dumps({"fields": fields, "blocks": [list(block) for block in blocks]})}


def test_efficientnet_strict_round_trip(tmp_path: Path):
    model = tiny_efficientnet()
    path = tmp_path / "tiny-lite.safetensors"
    save_file(model.state_dict(), str(path), metadata=blocks_metadata(TINY_EFFICIENTNET_BLOCKS))
    loaded = load_efficientnet_lite0(path)
    loaded.input_size = model.input_size
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(loaded(x), model(x))
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training


def test_efficientnet_missing_tensor_is_named(tmp_path: Path):
    state = tiny_efficientnet().state_dict()
    state.pop("_blocks.1._bn0.weight")
    path = tmp_path / "broken-lite.safetensors"
    save_file(state, str(path), metadata=blocks_metadata(TINY_EFFICIENTNET_BLOCKS))
    with pytest.raises(MixtaskError, match=r"broken-lite\.safetensors does not match.*_blocks\.1\._bn0\.weight"):
        load_efficientnet_lite0(path)


def test_efficientnet_rejects_other_files(caffe_file: Path):
    with pytest.raises(MixtaskError, match="not EfficientNet-Lite"):
        load_efficientnet_lite0(caffe_file)


def load_photo(name: str) -> torch.Tensor:
    image = Image.open(SHARED / "photos" / "train" / f"{name}.jpg").convert("RGB").resize((224, 224), Image.BICUBIC)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255


@pytest.mark.skipif(not REAL_EFFICIENTNET.is_file(), reason="shared EfficientNet-Lite0 file not present")
def test_real_efficientnet_top1():
    model = load_efficientnet_lite0(REAL_EFFICIENTNET)
    photos = {"skimage-chelsea": (285, 0.696), "opencv-baboon": (372, 0.698), "opencv-squirrel-cls": (335, 0.734)}
    batch = torch.cat([load_photo(name) for name in photos])
    with torch.no_grad():
        top = model.logits(batch).softmax(dim=1).max(dim=1)
    assert top.indices.tolist() == [label for label, _ in photos.values()]
    assert top.values.tolist() == pytest.approx([p for _, p in photos.values()], abs=0.01)
