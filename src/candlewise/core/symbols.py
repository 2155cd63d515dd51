"""Trading-pair symbols in ccxt's unified form (``BASE/QUOTE``, e.g. ``BTC/USDT``)."""

from __future__ import annotations

import re

_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,15}/[A-Z0-9]{2,10}$")


def is_valid_symbol(symbol: str) -> bool:
    return bool(_SYMBOL_RE.match(symbol))


def symbol_problem(symbol: str) -> str | None:
    """Why ``symbol`` is not a valid unified symbol, with the likely fix; None when it is valid."""
    if is_valid_symbol(symbol):
        return None
    text = str(symbol).strip()
    upper = text.upper()
    for sep in ("-", "_", ":"):
        if sep in upper:
            suggestion = upper.replace(sep, "/", 1)
            if is_valid_symbol(suggestion):
                return f"use BASE/QUOTE with a slash, e.g. {suggestion!r}"
    if is_valid_symbol(upper):
        return f"symbols are upper case, e.g. {upper!r}"
    for quote in ("USDT", "USDC", "BUSD", "BTC", "ETH", "EUR", "USD"):
        if upper.endswith(quote) and len(upper) > len(quote) + 1 and "/" not in upper:
            return f"use BASE/QUOTE with a slash, e.g. '{upper[: -len(quote)]}/{quote}'"
    return "expected BASE/QUOTE such as 'BTC/USDT'"


def file_stem(symbol: str) -> str:
    """``BTC/USDT`` -> ``BTC_USDT`` (the form used in file names, as freqtrade does)."""
    return symbol.replace("/", "_")


def exchange_id(symbol: str) -> str:
    """``BTC/USDT`` -> ``BTCUSDT`` (Binance's market id)."""
    return symbol.replace("/", "")
