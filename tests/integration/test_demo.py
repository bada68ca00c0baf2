"""`./dev demo --keep`, as the README's "Try it on one machine" runs it: the demo passes, the
stack stays up, the printed `source` line points lanmirror and docker at it, and Ctrl-C (SIGTERM
here) stops every part of it and removes its folder."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.consumer import ROOT


def test_demo_keep_leaves_a_stack_that_doctor_resolve_and_docker_use_then_stops(tmp_path):
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen([sys.executable, "-m", "tests.demo", "--keep"], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while "The stack is still running" not in log.read_text():
            assert demo.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        time.sleep(0.5)
        text = log.read_text()
        source = re.search(r"^  source (\S+/env\.sh)$", text, re.M)
        assert source, text
        env_sh = Path(source.group(1))
        script = (f"source {env_sh} && lanmirror doctor && lanmirror resolve --repo rocm/sgl-dev "
                  "--base-tag v0.5.5-rocm700-mi30x --no-record-line --json && docker images --digests")
        used = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                              env={k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "LANMIRROR_"))})
        assert used.returncode == 0, used.stdout + used.stderr
        assert '"source": "local"' in used.stdout and "rocm/sgl-dev" in used.stdout
        assert "FAIL" not in used.stdout
    finally:
        demo.send_signal(signal.SIGTERM)
        code = demo.wait(timeout=120)
    assert code == 0, log.read_text()
    assert "stopping the stack" in log.read_text()
    assert not env_sh.parent.exists(), "the demo's folder is removed when it stops"
    daemons = subprocess.run(["pgrep", "-f", str(env_sh.parent)], capture_output=True, text=True)
    assert daemons.stdout == "", "no daemon of the demo outlives it"
