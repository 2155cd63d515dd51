"""The trading engine: the per-candle rules' driver (``trading_engine``), its set-up, the
runner that feeds it and checkpoints it, and the block replay that drives the same rules."""
