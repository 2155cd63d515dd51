"""Per-(symbol, timeframe) direction models: network, training, calibration and model files.

Submodules are imported directly (``from candlewise.models.trainer import train_model``); this
package module stays empty so importing one part does not pull in the others.
"""
