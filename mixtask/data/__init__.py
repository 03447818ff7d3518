"""Training data: dataset layouts, decoding once per run, seeded sampling, corruptions.

../shared/docs/design.md, "Tasks and their training targets" (paper, Table 1). `layouts` needs no torch, so
`from mixtask.data import LAYOUTS` stays fast for CLI help; the other names import lazily.
"""

from __future__ import annotations

import importlib

from mixtask.data.layouts import LAYOUTS, Layout, available_splits, detect_layout, layouts_help, list_files

_LAZY = {
    "Dataset": "mixtask.data.dataset",
    "load_dataset": "mixtask.data.dataset",
    "default_max_side": "mixtask.data.decode",
    "SampleMaker": "mixtask.data.sampling",
    "CORRUPTIONS": "mixtask.data.corruptions",
    "add_holes": "mixtask.data.corruptions",
    "add_scratches": "mixtask.data.corruptions",
    "corrupt": "mixtask.data.corruptions",
}

__all__ = ["LAYOUTS", "Layout", "available_splits", "detect_layout", "layouts_help", "list_files", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mixtask.data' has no attribute {name!r}")
