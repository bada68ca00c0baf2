"""The node mirror's operations examples say what the CLI accepts: the systemd unit's ExecStart
and the DaemonSet's args parse with `lanmirror serve`'s own parser."""

import shlex

import yaml

from lanmirror.cmd.flags import build_parser
from tests.consumer import ROOT


def exec_start(unit: str) -> list[str]:
    text = (ROOT / "examples" / "systemd" / unit).read_text()
    return shlex.split(text.split("ExecStart=", 1)[1].split("\n#", 1)[0].replace("\\\n", " ").splitlines()[0])


def test_the_systemd_unit_runs_a_serve_the_cli_accepts():
    argv = exec_start("lanmirror-serve.service")
    assert argv[0].endswith("/lanmirror") and argv[1] == "serve"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve" and args.repo and args.cache_dir and args.cache_size == 200 << 30


def test_the_container_unit_runs_the_image_on_the_host_network_with_a_serve_the_cli_accepts():
    argv = exec_start("lanmirror-serve-container.service")
    assert argv[:3] == ["/usr/bin/docker", "run", "--rm"]
    at = argv.index("serve")
    image, docker_flags = argv[at - 1], argv[3:at - 1]
    assert image.startswith("ghcr.io/") and "--network" in docker_flags
    assert docker_flags[docker_flags.index("--network") + 1] == "host"
    volume = docker_flags[docker_flags.index("-v") + 1]
    args = build_parser().parse_args(argv[at:])
    assert args.command == "serve" and args.repo and str(args.cache_dir) == volume.split(":")[1]
    assert args.listen == ("127.0.0.1", 5080)


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
