"""mixtask: many image translations, and mixes of them, from one FiLM-conditioned network.

After Takeda, Benitez & Yanai, "Training of Multiple and Mixed Tasks With A Single Network
Using Feature Modulation". `import mixtask` stays light: torch is imported only when a model
is loaded.
"""

__version__ = "0.1.0"

__all__ = ["MixtaskError", "__version__", "load_model"]

from mixtask.errors import MixtaskError


def load_model(weights=None, *, device: str = "auto", precision: str = "auto"):
    """Load a weights file (default: the shipped model) as a ready-to-use `Translator`.

    >>> model = load_model()                                # doctest: +SKIP
    >>> out = model.translate(Image.open("photo.jpg"), "seg=1,style1=1")  # doctest: +SKIP
    """
    from mixtask.inference.translator import Translator

    return Translator.from_file(weights, device=device, precision=precision)
