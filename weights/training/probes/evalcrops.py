"""Shared by the hole and gate probes (fillhead/holediag.py, keepfill/gatediag.py): the eval's damaged val crops
and the network's raw output on them, read with a hook on its last conv."""

import zlib

import torch

from mixtask.data import CORRUPTIONS, SampleMaker, default_max_side, load_dataset
from mixtask.weights import load_weights

COUNT, SIZE = 16, 256  # the eval's samples and crop size


def load(weights: str):
    """(model in eval mode, its WeightsInfo, the eval's COUNT clean val crops); one thread, as the probes ran."""
    torch.set_num_threads(1)
    model, info = load_weights(weights)
    dataset = load_dataset("../shared/data", "val", max_side=default_max_side(SIZE))
    return model.eval(), info, SampleMaker(dataset, SIZE, 0).clean(COUNT)


def damaged_run(model, info, clean: torch.Tensor, kind: str):
    """The crops damaged as the eval damages them for `kind` -> (input x, damage mask, output y in [0, 1], the
    last conv's raw output cropped to the image, float)."""
    x, mask = CORRUPTIONS[kind](clean, torch.Generator().manual_seed(zlib.crc32(kind.encode())))
    condition = torch.tensor(info.task_set.vector({kind: 1.0})).expand(clean.shape[0], -1)
    raws = []
    hook = model.output.register_forward_hook(lambda module, args, out: raws.append(out))
    with torch.inference_mode():
        y = model.forward_any_size(x, condition).float().clamp(0, 1)
    hook.remove()
    return x, mask, y, raws[-1].float()[..., : x.shape[-2], : x.shape[-1]]
