"""Trading: positions, the paper broker (fills, fees, slippage, exits) and the ledger hash."""
