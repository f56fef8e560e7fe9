"""divot-mini: build Divot (arXiv 2412.04432) step by step, small enough for a laptop CPU."""
__version__ = "0.1.0"


def load_divot(scale: str = "mini", checkpoint_dir=None, device=None, dtype=None, **kwargs):
    """The whole Divot system, mini or full, behind the same verbs (see :mod:`divot_mini.divot`)."""
    from .divot import load_divot as _load

    return _load(scale, checkpoint_dir, device, dtype, **kwargs)
