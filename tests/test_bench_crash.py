"""The crash soak's quick mode: SIGKILL under load loses no acknowledged delivery."""
import pytest

from bench import crash


@pytest.mark.slow
def test_quick_crash_soak(capsys):
    code = crash.main(["--quick"])
    out = capsys.readouterr().out
    assert "lost: 0" in out and "integrity_check: ok" in out, out
    assert code == 0, out
