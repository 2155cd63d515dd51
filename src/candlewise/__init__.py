"""candlewise: a continuous-learning crypto trading system."""

__version__ = "0.1.0"
