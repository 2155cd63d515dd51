"""The guide's web dashboard: ``streamlit run dashboard_continuous_learning.py`` (then open
http://localhost:8501). Optional arguments after ``--``: ``--db URL``, ``--config PATH``.

A thin entry point; the page is ``candlewise.dashboard.app``. It only reads the store.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import candlewise  # noqa: F401
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from candlewise.dashboard.app import main

# Under ``streamlit run`` argv[0] is this file; under AppTest it is the test runner's.
main(sys.argv[1:] if Path(sys.argv[0]).name == Path(__file__).name else ())
