"""Market data: candles, validation, timeframe aggregation, feeds and the data provider."""
