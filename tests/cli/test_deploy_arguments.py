"""``deploy_production.py`` argument mistakes: what each phase is and how to run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from candlewise.cli.main import run


def test_phase_2_explains_it_is_the_approval_and_how_to_give_it(workdir: Path, capsys) -> None:
    assert run(["deploy", "--phase", "2"]) == 2
    err = capsys.readouterr().err
    assert "Error: phase 2 is the approval of phase 1's result, not a deployment" in err
    assert "python deploy_production.py --phase 3 --approve" in err
    assert "--force --reason" in err and "Traceback" not in err


@pytest.mark.parametrize(("argv", "what"), [([], "say which phase to run"),
                                            (["--phase", "4"], "there is no phase 4")])  # fmt: skip
def test_a_missing_or_unknown_phase_lists_the_phases(
    workdir: Path, capsys, argv: list[str], what: str
) -> None:
    assert run(["deploy", *argv]) == 2
    err = capsys.readouterr().err
    assert what in err and "2 is the approval" in err
    assert "--phase 1 --symbol BTC/USDT" in err and "--phase 3 --approve" in err
