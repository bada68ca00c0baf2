"""The node mirror's operations examples say what the CLI accepts: the systemd unit's ExecStart
and the DaemonSet's args parse with `lanmirror serve`'s own parser."""

import shlex

import yaml

from lanmirror.cmd.flags import build_parser
from tests.consumer import ROOT


def test_the_systemd_unit_runs_a_serve_the_cli_accepts():
    text = (ROOT / "examples" / "systemd" / "lanmirror-serve.service").read_text()
    line = text.split("ExecStart=", 1)[1].split("\n#", 1)[0].replace("\\\n", " ").splitlines()[0]
    argv = shlex.split(line)
    assert argv[0].endswith("/lanmirror") and argv[1] == "serve"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve" and args.repo and args.cache_dir and args.cache_size == 200 << 30


def test_the_daemonset_runs_a_serve_the_cli_accepts_on_the_host_network():
    spec = yaml.safe_load((ROOT / "examples" / "kubernetes" / "lanmirror-serve.yaml").read_text())
    pod = spec["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    (container,) = pod["containers"]
    argv = [a.replace("$(NODE_IP)", "10.1.2.3") for a in container["args"]]
    args = build_parser().parse_args(argv)
    assert args.command == "serve" and args.listen == ("10.1.2.3", 5080)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["terminationGracePeriodSeconds"] > args.grace
