"""How much saliency do frozen EfficientNet-Lite0 features carry on their own? Small heads trained on precomputed
features of 1,920 train seg crops (256 px, the training mix of composites and photos), scored by gate-style IoU
(logit > 0, bilinear to the crop) on the 32-crop val sets of `../composites/gate_iou.py`. Output: feature_heads.txt.

    python weights/training/probes/backbone/feature_heads.py
"""

import time

import torch
import torch.nn.functional as F
from torch import nn

from mixtask.backbones.efficientnet_lite import EfficientNetTrunk, load_trunk_weights
from mixtask.data import SampleMaker, default_max_side, load_dataset
from mixtask.evaluation.metrics import iou
from mixtask.training.losses import mask_losses

torch.set_num_threads(1)
torch.manual_seed(0)
SIZE = 256
trunk = load_trunk_weights(EfficientNetTrunk(), "../shared/data/backbones/efficientnet-lite0.safetensors").eval()


def features(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The last block's output at 1/16 (112 channels) and the trunk's at 1/32 (320)."""
    outputs = []
    with torch.no_grad():
        h = F.relu6(trunk._bn0(trunk._conv_stem(trunk.normalized(x))))
        for block in trunk._blocks:
            h = block(h)
            outputs.append(h)
    return [o for o in outputs if o.shape[-1] == SIZE // 16][-1], outputs[-1]


def crops(split: str, seed: int, count: int, fraction=None, **kwargs):
    dataset = load_dataset("../shared/data", split, max_side=default_max_side(SIZE), warn=lambda message: None)
    maker = SampleMaker(dataset, SIZE, seed, mask_fraction=fraction, **kwargs)
    x, masks = map(torch.cat, zip(*(maker.segmentation(32) for _ in range(count // 32))))
    f16, f32 = map(torch.cat, zip(*(features(x[i : i + 32]) for i in range(0, len(x), 32))))
    return f16, f32, masks


class Linear32(nn.Module):
    """A 1x1 conv on the 1/32 features."""

    def __init__(self, channels16: int):
        super().__init__()
        self.conv = nn.Conv2d(320, 1, 1)

    def forward(self, f16, f32):
        return self.conv(f32)


class Mlp16(nn.Module):
    """1/16 features and the 1/32 ones up-sampled, through two 1x1 convs."""

    def __init__(self, channels16: int):
        super().__init__()
        self.hidden, self.out = nn.Conv2d(320 + channels16, 128, 1), nn.Conv2d(128, 1, 1)

    def forward(self, f16, f32):
        up = F.interpolate(f32, size=f16.shape[-2:], mode="bilinear")
        return self.out(F.relu(self.hidden(torch.cat([f16, up], 1))))


def loss(logit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The run's mask loss (BCE + soft Dice) on the logit up-sampled to the crop."""
    terms = mask_losses(F.interpolate(logit, size=mask.shape[-2:], mode="bilinear"), mask)
    return terms["bce"] + terms["dice"]


def gate_iou(head, f16, f32, mask) -> float:
    with torch.no_grad():
        found = F.interpolate(head(f16, f32), size=mask.shape[-2:], mode="bilinear") > 0
    return iou(found, mask > 0.5).mean().item()


train = crops("train", 7, 1920)
val = {
    "comp-any": crops("val", 1, 32, 0.0),
    "comp-plain": crops("val", 1, 32, 0.0, composites="plain"),
    "photos": crops("val", 2, 32, 1.0),
}
for name, kind in (("lin32", Linear32), ("mlp16", Mlp16)):
    head = kind(train[0].shape[1])
    optimizer, started = torch.optim.Adam(head.parameters(), 1e-3), time.time()
    for step in range(1500):
        pick = torch.randint(0, len(train[2]), (32,))
        f16, f32, mask = (t[pick] for t in train)
        if step % 2:
            f16, f32, mask = f16.flip(-1), f32.flip(-1), mask.flip(-1)
        value = loss(head(f16, f32), mask)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        if step % 500 == 499:
            scores = " ".join(f"{set_name} {gate_iou(head, *crops_):.3f}" for set_name, crops_ in val.items())
            print(name, step + 1, f"train loss {value.item():.3f}", scores, f"{time.time() - started:.0f}s")
