"""Graceful stop on Ctrl+C / SIGTERM: finish the current minute, checkpoint, exit.

A signal only sets a flag that long-running loops poll at safe points (minute boundaries),
so no trade is ever half-written; a second Ctrl+C while stopping interrupts at once (the last
checkpoint still holds, so even that loses nothing but the work since it).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType


class StopRequest:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous: dict[int, object] = {}
        self.signal_name: str | None = None

    def __call__(self) -> bool:
        return self._event.is_set()

    def request(self, name: str = "request") -> None:
        self.signal_name = self.signal_name or name
        self._event.set()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self._event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.request(signal.Signals(signum).name)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()
