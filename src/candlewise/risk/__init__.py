"""Risk: pre-trade limits (size, exposure, daily loss) and the drawdown kill switch."""
