"""Heap hygiene: frozen start-up objects leave collection cheap and later garbage collectable."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from candlewise.system.memory import release_freed_memory

# In a fresh interpreter: freezing in the test process would freeze pytest's objects too.
FREEZE_SCRIPT = textwrap.dedent(
    """
    import gc, weakref
    import candlewise.backtest.run  # the backtest command's imports (torch, pandas, SQLAlchemy)
    from candlewise.system.memory import freeze_start_up_objects

    tracked = len(gc.get_objects())
    freeze_start_up_objects()
    frozen = gc.get_freeze_count()

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle made after the freeze: only the collector can free it
    gone = weakref.ref(a)
    del a, b
    found = gc.collect()
    print(tracked, frozen, len(gc.get_objects()), found, gone() is None)
    """
)


@pytest.mark.slow
def test_freezing_takes_the_imports_out_of_collection_but_not_later_garbage() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FREEZE_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    tracked, frozen, left, found, collected = done.stdout.split()
    assert int(frozen) >= int(tracked) > 100_000  # torch & co: what a full pass would walk
    assert int(left) < 1_000  # what a collection walks now
    assert int(found) >= 2 and collected == "True"


def test_release_freed_memory_reports_whether_it_could_trim() -> None:
    glibc = platform.libc_ver()[0] == "glibc"  # malloc_trim is a glibc call
    assert release_freed_memory() is glibc
