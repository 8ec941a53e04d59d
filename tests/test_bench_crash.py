"""The crash soak's quick mode: SIGKILL under load loses no acknowledged delivery.

Both deployments: the production command (web processes and the worker process the gunicorn master
starts, killed together), and web processes with PROCESSOR=off beside a `python -m dashapp worker`
process, killed in turn (web, worker, both).
"""
import re

import pytest

from bench import crash


@pytest.mark.slow
def test_quick_crash_soak(capsys):
    code = crash.main(["--quick"])
    out = capsys.readouterr().out
    for name in ("server", "split"):
        answered = re.search(rf"^\[{name}\] answered 2xx during the crashes: (\d+); applied: (\d+); lost: (\d+); "
                             rf"inbox pending: (\d+)", out, re.M)
        assert answered, out
        assert int(answered[1]) > 0 and int(answered[2]) >= int(answered[1]), out
        assert answered[3] == "0" and answered[4] == "0", out
        assert f"[{name}] integrity_check: store ok, inbox ok" in out, out
        assert f"[{name}] FAIL" not in out, out
    kills = re.search(r"^\[split\] .*SIGKILLs: (.*); took", out, re.M)
    assert kills and [k.split()[0] for k in kills[1].split(", ")] == ["web", "worker", "both"], out
    assert code == 0, out
