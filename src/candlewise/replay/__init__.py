"""Block replay: backtests without automatic retraining, a whole read-ahead block at a time."""
