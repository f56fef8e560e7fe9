"""divot-mini: build Divot (arXiv 2412.04432) step by step, small enough for a laptop CPU."""
__version__ = "0.1.0"
