"""Every path out of the action goes through the same escaping, a bug's traceback included."""

import os
import subprocess
import sys

SCRIPT = """
import lanmirror.cmd.action as action

def boom(args):
    raise RuntimeError("boom\\n::error::pwned\\n##[set-output name=image;]evil\\n::add-mask::x")

action.COMMANDS[{command!r}] = boom
raise SystemExit(action.main([{command!r}]))
"""


def run(tmp_path, command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INPUT_REPO": "rocm/sgl-dev", "INPUT_BASE_TAG": "v1", "INPUT_TAGS": "v1",
           "GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary")}
    return subprocess.run([sys.executable, "-c", SCRIPT.format(command=command)], env=env, text=True,
                          capture_output=True, timeout=60)


def test_an_unexpected_error_is_logged_escaped_inside_stop_commands(tmp_path):
    for command in ("resolve", "mirror"):
        proc = run(tmp_path, command)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert proc.stderr == ""  # no raw traceback anywhere
        lines = proc.stdout.splitlines()
        commands = [line for line in lines if line.lstrip().startswith("::")]
        stop, resume = commands[0], commands[1]
        assert stop.startswith("::stop-commands::") and resume == f"::{stop.split('::')[2]}::"
        assert len(commands) == 3 and commands[2].startswith("::error title=lanmirror")
        assert "RuntimeError: boom" in commands[2] and "pwned" not in commands[2]  # the first line only
        inside = lines[lines.index(stop) + 1:lines.index(resume)]
        assert any("Traceback" in line and "pwned" in line for line in inside)  # shown, as one inert line
        assert "##[" not in proc.stdout

