"""REST backfill through ccxt against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import pytest

from candlewise.errors import UserError
from candlewise.market.binance_rest import (
    BinanceUnreachable,
    fetch_candles,
    load_spot_markets,
    make_exchange,
)
from candlewise.timeframes import MINUTE_MS
from tests.market.binance_servers import (
    T0,
    BinanceRestServer,
    ScriptClock,
    closed_port,
    make_series,
)

pytestmark = pytest.mark.timeout(60)

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def test_make_exchange_points_spot_urls_at_rest_url_and_loads_spot_only() -> None:
    clock = ScriptClock(T0)
    with BinanceRestServer(make_series(SYMBOLS, T0, 1), clock) as rest:
        exchange = make_exchange(rest.url + "/", timeout_ms=3000)
        api = exchange.urls["api"]
        assert api["public"] == rest.url + "/api/v3"
        assert api["private"] == rest.url + "/api/v3"
        assert api["v1"] == rest.url + "/api/v1"
        assert api["sapi"] == rest.url + "/sapi/v1"
        assert api["fapiPublic"].startswith("https://fapi.binance.com")  # never called: spot only
        assert exchange.enableRateLimit is True
        assert exchange.timeout == 3000
        assert exchange.options["fetchMarkets"]["types"] == ["spot"]
        load_spot_markets(exchange, SYMBOLS)
        assert rest.paths == ["/api/v3/exchangeInfo"]
        assert exchange.markets["BTC/USDT"]["id"] == "BTCUSDT"
        assert exchange.markets["ETH/USDT"]["spot"] is True


def test_make_exchange_accepts_url_with_api_path_and_rejects_garbage() -> None:
    exchange = make_exchange("http://127.0.0.1:9/api/v3")
    assert exchange.urls["api"]["public"] == "http://127.0.0.1:9/api/v3"
    assert make_exchange().urls["api"]["public"] == "https://api.binance.com/api/v3"
    with pytest.raises(UserError, match="invalid Binance REST url"):
        make_exchange("127.0.0.1:9")


def test_pagination_over_more_than_1000_candles_and_forming_candle_dropped() -> None:
    n = 2500
    series = make_series(SYMBOLS, T0, n + 1)
    # Now is 30 s into minute n: Binance serves minute n too, still forming.
    clock = ScriptClock(T0 + n * MINUTE_MS + 30_000)
    progress: list[tuple[int, int]] = []
    with BinanceRestServer(series, clock) as rest:
        exchange = make_exchange(rest.url)
        got = fetch_candles(
            exchange,
            "BTC/USDT",
            "1m",
            T0,
            T0 + 10 * n * MINUTE_MS,  # until far ahead: "now" is the cut-off
            on_progress=lambda count, last: progress.append((count, last)),
            now_ms=clock(),
        )
    assert got == series["BTC/USDT"][:n]
    starts = [r.start_ms for r in rest.klines]
    assert starts == [T0, T0 + 1000 * MINUTE_MS, T0 + 2000 * MINUTE_MS]
    assert all(r.limit == 1000 and r.symbol == "BTC/USDT" for r in rest.klines)
    # The server did send the forming candle; fetch_candles dropped it.
    assert rest.klines[-1].returned[-1] == T0 + n * MINUTE_MS
    assert progress == [
        (1000, T0 + 999 * MINUTE_MS),
        (2000, T0 + 1999 * MINUTE_MS),
        (2500, T0 + n * MINUTE_MS),
    ]


def test_until_bounds_the_result_by_close_time() -> None:
    series = make_series(SYMBOLS, T0, 30)
    clock = ScriptClock(T0 + 30 * MINUTE_MS)
    with BinanceRestServer(series, clock) as rest:
        exchange = make_exchange(rest.url)
        # until = open of minute 5 + 30 s: minute 4 closed by then, minute 5 not.
        got = fetch_candles(
            exchange,
            "ETH/USDT",
            "1m",
            T0 + 2 * MINUTE_MS,
            T0 + 5 * MINUTE_MS + 30_000,
            now_ms=clock(),
        )
        assert got == series["ETH/USDT"][2:5]
        # until exactly a close time: that candle is included.
        got = fetch_candles(exchange, "ETH/USDT", "1m", T0, T0 + 3 * MINUTE_MS, now_ms=clock())
        assert got == series["ETH/USDT"][0:3]


def test_empty_range_makes_no_request() -> None:
    clock = ScriptClock(T0 + 10 * MINUTE_MS)
    with BinanceRestServer(make_series(SYMBOLS, T0, 10), clock) as rest:
        exchange = make_exchange(rest.url)
        assert fetch_candles(exchange, "BTC/USDT", "1m", T0, T0 + 59_999, now_ms=clock()) == []
        # since + 1m is after "now": nothing can have closed yet.
        late = T0 + 9 * MINUTE_MS + 1
        assert (
            fetch_candles(exchange, "BTC/USDT", "1m", late, late + MINUTE_MS, now_ms=clock()) == []
        )
        assert rest.klines == []


def test_overlapping_pages_are_deduplicated_and_sorted() -> None:
    n = 2100
    series = make_series(SYMBOLS, T0, n)
    clock = ScriptClock(T0 + n * MINUTE_MS)
    with BinanceRestServer(series, clock, overlap=5) as rest:
        exchange = make_exchange(rest.url)
        got = fetch_candles(exchange, "BTC/USDT", "1m", T0, clock(), now_ms=clock())
    assert got == series["BTC/USDT"]
    assert len({c.open_time for c in got}) == n
    assert len(rest.klines) == 3  # pages overlapped, yet pagination moved forward


def test_other_timeframes_use_their_own_length() -> None:
    clock = ScriptClock(T0)
    with BinanceRestServer(make_series(SYMBOLS, T0, 1), clock) as rest:
        exchange = make_exchange(rest.url)
        # A 1h candle opening at T0 cannot have closed 10 minutes later: no request at all.
        assert fetch_candles(exchange, "BTC/USDT", "1h", T0, T0 + 10 * MINUTE_MS) == []
        assert rest.klines == []
    with pytest.raises(ValueError, match="unknown timeframe"):
        fetch_candles(exchange, "BTC/USDT", "7m", T0, T0 + MINUTE_MS)


def test_bad_symbol_becomes_user_error() -> None:
    clock = ScriptClock(T0 + 5 * MINUTE_MS)
    with BinanceRestServer(make_series(SYMBOLS, T0, 5), clock) as rest:
        exchange = make_exchange(rest.url)
        with pytest.raises(UserError) as info:
            fetch_candles(exchange, "BTC/USDX", "1m", T0, clock(), now_ms=clock())
        assert info.value.message == "Binance has no market 'BTC/USDX'"
        assert info.value.hint
        assert not isinstance(info.value, BinanceUnreachable)
        with pytest.raises(UserError, match="Binance has no market 'DOGE/USDT'"):
            load_spot_markets(exchange, ["BTC/USDT", "DOGE/USDT"])
        assert rest.klines == []


def test_unreachable_server_becomes_user_error_with_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    exchange = make_exchange(url, timeout_ms=2000)
    with pytest.raises(BinanceUnreachable) as info:
        fetch_candles(exchange, "BTC/USDT", "1m", T0, T0 + 5 * MINUTE_MS, now_ms=T0 + 5 * MINUTE_MS)
    assert isinstance(info.value, UserError)
    assert info.value.message.startswith(f"cannot reach Binance at {url}/api/v3: ")
    assert "refused" in info.value.message.lower()
    assert info.value.hint


def test_http_503_is_a_network_error() -> None:
    clock = ScriptClock(T0 + 5 * MINUTE_MS)
    with BinanceRestServer(make_series(SYMBOLS, T0, 5), clock, fail_klines=1) as rest:
        exchange = make_exchange(rest.url)
        with pytest.raises(BinanceUnreachable, match="cannot reach Binance at"):
            fetch_candles(exchange, "BTC/USDT", "1m", T0, clock(), now_ms=clock())
        # The next call succeeds: the failure was transient.
        assert len(fetch_candles(exchange, "BTC/USDT", "1m", T0, clock(), now_ms=clock())) == 5
