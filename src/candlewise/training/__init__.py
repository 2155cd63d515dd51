"""Training models: the first training, challengers, the retrainers and their worker
processes, and the signal-calibration child."""
