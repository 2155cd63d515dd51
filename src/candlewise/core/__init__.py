"""Value types every layer shares: candles and their issues, clock, timeframes, symbols,
timestamps, errors. No I/O, no third-party adapters."""
