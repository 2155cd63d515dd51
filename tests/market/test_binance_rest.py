"""REST backfill through ccxt against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import re
import traceback

import pytest

from candlewise.core.errors import UserError
from candlewise.core.timeframes import MINUTE_MS
from candlewise.market.binance_rest import (
    BinanceUnreachable,
    fetch_candles,
    load_spot_markets,
    make_exchange,
)
from tests.market.binance_servers import (
    T0,
    BinanceRestServer,
    ScriptClock,
    closed_port,
    make_series,
    rest_row,
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


# --- malformed rows ----------------------------------------------------------------------------


def test_malformed_rows_are_skipped_and_reported_once_each() -> None:
    series = make_series(SYMBOLS, T0, 10)
    btc = series["BTC/USDT"]
    good_row = rest_row(btc[1])
    bad_rows: dict[int, object] = {
        btc[1].open_time: [btc[1].open_time, None, *good_row[2:]],  # the reported TypeError
        btc[2].open_time: None,
        btc[3].open_time: [btc[3].open_time, "NaN", *good_row[2:]],
        btc[4].open_time: [btc[4].open_time, "1.5"],  # too short
        btc[5].open_time: ["soon", *good_row[1:]],
        btc[6].open_time: [btc[6].open_time, "1", "2", "0.5", "abc", "3"],
        btc[9].open_time: [btc[9].open_time, None, None, None, None, None],  # forming: unchecked
    }
    # Now is 30 s into minute 9: minute 9 is the forming candle.
    clock = ScriptClock(T0 + 9 * MINUTE_MS + 30_000)
    reports: list[tuple[str | None, str]] = []
    progress: list[tuple[int, int]] = []
    with BinanceRestServer(series, clock, bad_rows={"BTC/USDT": bad_rows}) as rest:
        got = fetch_candles(
            make_exchange(rest.url),
            "BTC/USDT",
            "1m",
            T0,
            clock(),
            on_progress=lambda count, last: progress.append((count, last)),
            now_ms=clock(),
            on_bad_data=lambda symbol, detail: reports.append((symbol, detail)),
        )
        assert len(rest.klines) == 1
    assert got == [btc[0], btc[7], btc[8]]
    assert [symbol for symbol, _ in reports] == ["BTC/USDT"] * 6
    details = [detail for _, detail in reports]
    assert "open is None" in details[0] and str(btc[1].open_time) in details[0]
    assert "no usable open time: None" in details[1]
    assert "open is 'NaN'" in details[2]
    assert "row too short" in details[3]
    assert "no usable open time: ['soon'" in details[4]
    assert "close is 'abc'" in details[5]
    assert progress == [(3, btc[9].open_time)]


def test_rows_failing_validation_are_skipped_and_reported() -> None:
    """A row can be well formed and still no candle: the feed's rules apply over REST too."""
    series = make_series(SYMBOLS, T0, 8)
    btc = series["BTC/USDT"]

    def row(i: int, **values: str) -> list[object]:
        good = rest_row(btc[i])
        for index, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
            if name in values:
                good[index] = values[name]
        return good

    misaligned = rest_row(btc[5])
    misaligned[0] = btc[5].open_time + 1
    bad_rows: dict[int, object] = {
        btc[1].open_time: row(1, open="-1.0"),
        btc[2].open_time: row(2, low="0"),
        btc[3].open_time: row(3, high="1.0"),  # high < low
        btc[4].open_time: row(4, volume="-0.5"),
        btc[5].open_time: misaligned,
    }
    clock = ScriptClock(T0 + 8 * MINUTE_MS + 1)
    reports: list[tuple[str | None, str]] = []
    with BinanceRestServer(series, clock, bad_rows={"BTC/USDT": bad_rows}) as rest:
        got = fetch_candles(
            make_exchange(rest.url),
            "BTC/USDT",
            "1m",
            T0,
            clock(),
            now_ms=clock(),
            on_bad_data=lambda symbol, detail: reports.append((symbol, detail)),
        )
    assert got == [btc[0], btc[6], btc[7]]
    kinds = [d.split(": ")[1] for _, d in reports]
    assert kinds == [
        "non_positive_price",
        "non_positive_price",
        "high_below_low",
        "negative_volume",
        "misaligned_timestamp",
    ]


def test_a_bad_row_at_a_page_boundary_is_reported_once() -> None:
    n = 1500
    series = make_series(SYMBOLS, T0, n)
    btc = series["BTC/USDT"]
    # The last row of the first page has no open time: the next page starts at it again.
    clock = ScriptClock(T0 + n * MINUTE_MS)
    reports: list[tuple[str | None, str]] = []
    with BinanceRestServer(
        series, clock, bad_rows={"BTC/USDT": {btc[999].open_time: None}}
    ) as rest:
        got = fetch_candles(
            make_exchange(rest.url),
            "BTC/USDT",
            "1m",
            T0,
            clock(),
            now_ms=clock(),
            on_bad_data=lambda symbol, detail: reports.append((symbol, detail)),
        )
        assert [r.start_ms for r in rest.klines] == [T0, btc[999].open_time]
    assert got == btc[:999] + btc[1000:]
    assert len(reports) == 1


# --- errors: never a traceback, never a secret -------------------------------------------------

KEY, SECRET = "PLANTED-api-key-4f1c2b", "PLANTED-secret-9e8d7c"
AUTH_MSG = "Invalid API-key, IP, or permissions for action."
BAN_MSG = "Way too much request weight used; IP banned until 1700000000000."
UNKNOWN_MSG = "An unknown error occurred while processing the request."


def _assert_no_secret(exc: BaseException) -> None:
    """Neither the key nor the secret in the message, the hint or the whole traceback chain."""
    shown = str(exc) + "".join(traceback.format_exception(exc))
    assert KEY not in shown and SECRET not in shown
    assert not re.search(r"signature=[0-9a-f]{16}", str(exc))


@pytest.mark.parametrize(
    ("status", "body", "unreachable", "expected"),
    [
        (401, {"code": -2015, "msg": AUTH_MSG}, False, "refused the request as unauthorised"),
        (403, {"code": -2015, "msg": AUTH_MSG}, False, "refused the request as unauthorised"),
        (418, {"code": -1003, "msg": BAN_MSG}, True, "cannot reach Binance at"),
        (500, {"code": -1000, "msg": UNKNOWN_MSG}, True, "cannot reach Binance at"),
        (400, {"code": -1100, "msg": "Illegal characters found."}, False, "refused the request"),
    ],
)
@pytest.mark.parametrize("keys", [False, True], ids=["no-keys", "keys-planted"])
def test_http_errors_become_user_errors_naming_url_and_message(
    status: int, body: dict[str, object], unreachable: bool, expected: str, keys: bool
) -> None:
    clock = ScriptClock(T0 + 5 * MINUTE_MS)
    with BinanceRestServer(make_series(SYMBOLS, T0, 5), clock, fail_with=(status, body)) as rest:
        creds = {"api_key": KEY, "secret": SECRET} if keys else {}
        for call in (
            lambda ex: load_spot_markets(ex, SYMBOLS),
            lambda ex: fetch_candles(ex, "BTC/USDT", "1m", T0, clock(), now_ms=clock()),
        ):
            exchange = make_exchange(rest.url, **creds)
            with pytest.raises(UserError) as info:
                call(exchange)
            error = info.value
            assert isinstance(error, BinanceUnreachable) is unreachable
            assert expected in error.message
            assert f"Binance at {rest.url}/api/v3" in error.message
            assert f"(HTTP {status})" in error.message
            assert str(body["msg"]) in error.message  # Binance's own words reach the user
            assert error.hint
            _assert_no_secret(error)
        # With keys, ccxt signs a private call while loading markets: the key did go out.
        assert (KEY in rest.api_keys) is keys


def test_a_signed_url_in_ccxt_message_is_redacted() -> None:
    # No Binance "code" in the body: ccxt's message then quotes the signed url.
    clock = ScriptClock(T0)
    with BinanceRestServer({}, clock, fail_with=(401, {"msg": "go away"})) as rest:
        exchange = make_exchange(rest.url, api_key=KEY, secret=SECRET)
        with pytest.raises(UserError) as info:
            load_spot_markets(exchange, SYMBOLS)
    assert "signature=***" in info.value.message
    assert "go away" in info.value.message
    _assert_no_secret(info.value)
