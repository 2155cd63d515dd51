"""Every SQL query printed in the deployment guide, verbatim (whitespace folded).

``test_guide_queries.py`` checks that this list still matches the guide when ../shared is present.
"""

GUIDE_QUERIES: tuple[str, ...] = (
    "PRAGMA integrity_check;",
    "SELECT symbol, COUNT(*) FROM candles GROUP BY symbol;",
    "SELECT COUNT(*), AVG(validation_confidence) FROM retraining_history "
    "WHERE triggered_at > datetime('now', '-6 hours');",
    "SELECT timestamp, error_type, message FROM error_log ORDER BY timestamp DESC LIMIT 20;",
    "SELECT AVG(confidence_score), MAX(confidence_score) FROM confidence_history "
    "WHERE symbol = 'BTC/USDT' AND timestamp > datetime('now', '-24 hours');",
    "SELECT trigger_reason, COUNT(*) FROM retraining_history "
    "WHERE triggered_at > datetime('now', '-6 hours') GROUP BY trigger_reason;",
    "SELECT symbol, predicted_direction, pnl_absolute, confidence FROM trade_outcomes "
    "WHERE pnl_absolute < 0 ORDER BY pnl_absolute ASC LIMIT 10;",
    "SELECT * FROM trade_outcomes ORDER BY id DESC LIMIT 20;",
    "SELECT * FROM retraining_history ORDER BY id DESC LIMIT 10;",
    "SELECT * FROM learning_states ORDER BY id DESC LIMIT 5;",
    "SELECT SUM(pnl) FROM positions WHERE status = 'closed';",
)
