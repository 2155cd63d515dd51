"""``parse_speed``, ``parse_duration_ms`` and ``ScaledClock``: ValueError for every bad input.

``data stream`` turns those ValueErrors into ``Error: ...`` and exit code 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from candlewise.cli.main import run
from candlewise.core.clock import (
    MAX_DURATION_MS,
    MAX_SPEED,
    ScaledClock,
    parse_duration_ms,
    parse_speed,
)

SPEED_FORMS = "use 'max' (no pacing) or a number from above 0 up to 1e+06, such as 60"


@pytest.mark.parametrize(
    ("text", "speed"),
    [("max", None), (" MAX ", None), ("60", 60.0), ("60x", 60.0), ("0.5", 0.5), ("1e6", 1e6)],
)
def test_valid_speeds(text: str, speed: float | None) -> None:
    assert parse_speed(text) == speed


INFINITE = "for no pacing write 'max'; else"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("nan", "not a number;"),
        ("NaN", "not a number;"),
        ("inf", INFINITE),
        ("infinity", INFINITE),
        ("1e999", INFINITE),
        ("-inf", "must be positive;"),
        ("0", "must be positive;"),
        ("-5", "must be positive;"),
        ("-0", "must be positive;"),
        ("1e7", "too fast;"),
    ],
)
def test_bad_speeds_name_the_accepted_forms(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_speed(text)
    assert str(info.value) == f"invalid speed {text!r}: {reason} {SPEED_FORMS}"


@pytest.mark.parametrize("text", ["warp", "", "x", "60xx"])
def test_unparseable_speed(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_speed(text)
    assert str(info.value) == f"invalid speed {text!r}: {SPEED_FORMS}"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("24h", 86_400_000),
        ("90m", 5_400_000),
        ("2d", 172_800_000),
        ("30s", 30_000),
        ("1.5h", 5_400_000),
        ("36525d", MAX_DURATION_MS),
        ("0.001s", 1),
    ],
)
def test_valid_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["1e30d", "1e308d", "36526d", "infd", "inf h"])
def test_absurd_durations_are_value_errors_not_overflow(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration_ms(text)
    assert str(info.value) == f"invalid duration {text!r}: longer than 100 years (36525d)"


@pytest.mark.parametrize(
    "text", ["nand", "NaNh", "0m", "-1h", "-infd", "24", "h", "1w", "", "abch"]
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration_ms(text)
    assert str(info.value) == (
        f"invalid duration {text!r}: use a positive number and a unit, e.g. 24h, 90m, 2d, 30s"
    )


def test_duration_below_a_millisecond() -> None:
    with pytest.raises(ValueError, match=r"invalid duration '0.0001s': shorter than a millisecond"):
        parse_duration_ms("0.0001s")


@pytest.mark.parametrize("speed", [0.0, -1.0, float("nan"), float("inf"), MAX_SPEED * 2])
def test_scaled_clock_rejects_bad_speeds(speed: float) -> None:
    with pytest.raises(ValueError, match="speed must be a positive number up to 1e\\+06"):
        ScaledClock(0, speed, monotonic=lambda: 0.0, sleep=lambda s: None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--speed", "nan"], "Error: invalid speed 'nan': not a number; " + SPEED_FORMS),
        (["--speed", "inf"], "Error: invalid speed 'inf': for no pacing write 'max'; else "),
        (["--speed", "-3"], "Error: invalid speed '-3': must be positive; " + SPEED_FORMS),
        (["--speed", "0"], "Error: invalid speed '0': must be positive; " + SPEED_FORMS),
        (["--duration", "1e30d"], "Error: invalid duration '1e30d': longer than 100 years"),
        (["--duration", "nand"], "Error: invalid duration 'nand': use a positive number"),
    ],
)
def test_stream_turns_bad_speed_and_duration_into_exit_code_2(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert run(["data", "stream", "--feed", "simulated", *args]) == 2
    out = capsys.readouterr()
    assert out.err.splitlines()[0].startswith(message), out.err
    assert "Traceback" not in out.out + out.err
    assert not (workdir / "data").exists()  # failed before touching the store
