"""The guide's import path ``src.data``; the implementation lives in ``candlewise.market``."""
