"""The local stack every integration test, the demo and the benchmarks run against.

    dockerd 20.10 (own data root + socket); dockerd 26.1 with the containerd store, in a chroot
    token server ─ token proxy ─┐
    "Docker Hub": Distribution with token auth ─ hub proxy (Hub rate-limit rules + faults)
    "LAN mirror": Distribution, plain HTTP ─ lan proxy (faults)
    second LAN mirror (another site) ─ lan2 proxy

Clients always go through the proxies, so every request is counted and can be broken.
Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lanmirror.authn import Credentials
from lanmirror.remote.registry import Registry as RegistryClient
from lanmirror.transport import Timeouts, Transport

from .daemons import Dockerd, Registry
from .engine26 import ChrootDockerd
from .proxy import FaultProxy
from .tokens import ISSUER, SERVICE, TokenServer

HUB_USER = "ci-bot"
# Distinctive so that a test can grep every output of the suite for it.
HUB_PASSWORD = "s3cret-Pa55-n3ver-pr1nt"
HUB_CREDS = Credentials(HUB_USER, HUB_PASSWORD)
# The LAN's own login (htpasswd and token-auth LAN registries); also searched for in every output.
LAN_USER = "lan-bot"
LAN_PASSWORD = "lan-Pa55-n3ver-pr1nt-either"
SECRETS = (HUB_PASSWORD, LAN_PASSWORD)


@dataclass
class Stack:
    root: Path
    with_docker: bool = True
    dockerd: Dockerd | None = None
    dockerd26: ChrootDockerd | None = None  # Engine 26.1 with the containerd image store, from a chroot
    tokens: TokenServer = field(init=False)
    token_proxy: FaultProxy = field(init=False)
    hub_registry: Registry = field(init=False)
    hub_proxy: FaultProxy = field(init=False)
    lan_registry: Registry = field(init=False)
    lan_proxy: FaultProxy = field(init=False)
    lan2_registry: Registry = field(init=False)
    lan2_proxy: FaultProxy = field(init=False)
    lan3_registry: Registry = field(init=False)
    lan3_proxy: FaultProxy = field(init=False)
    pull_through: Registry = field(init=False)  # Distribution in proxy mode in front of the Hub

    # Registries the engines may reach over plain HTTP besides loopback (the bench's netns "Hub").
    insecure: list[str] = field(default_factory=list)
    # The second engine (a chroot with Engine 26.1): the tests need it, the bench does not.
    with_engine26: bool = True

    @classmethod
    def create(cls, root: Path | None = None, with_docker: bool = True, *, insecure: list[str] | None = None,
               with_engine26: bool = True) -> Stack:
        root = root or Path(tempfile.mkdtemp(prefix="lanmirror-stack-"))
        return cls(root, with_docker, insecure=list(insecure or []), with_engine26=with_engine26)

    def start(self) -> Stack:
        self.root.mkdir(parents=True, exist_ok=True)
        self.tokens = TokenServer(self.root, {HUB_USER: HUB_PASSWORD, LAN_USER: LAN_PASSWORD}).start()
        self.token_proxy = FaultProxy(f"127.0.0.1:{self.tokens.port}", "token").start()
        self.hub_registry = Registry(self.root, "hub", token_realm=f"http://{self.token_proxy.address}/token",
                                     token_cert=self.tokens.cert_path, service=SERVICE, issuer=ISSUER).start()
        self.hub_proxy = FaultProxy(self.hub_registry.address, "hub", hub_rules=True, limit=100).start()
        self.lan_registry = Registry(self.root, "lan").start()
        self.lan_proxy = FaultProxy(self.lan_registry.address, "lan").start()
        self.lan2_registry = Registry(self.root, "lan2").start()
        self.lan2_proxy = FaultProxy(self.lan2_registry.address, "lan2").start()
        self.lan3_registry = Registry(self.root, "lan3").start()
        self.lan3_proxy = FaultProxy(self.lan3_registry.address, "lan3").start()
        self.pull_through = Registry(self.root, "pullthrough",
                                     proxy=(f"http://{self.hub_proxy.address}", HUB_USER, HUB_PASSWORD)).start()
        if self.with_docker:
            self.dockerd = Dockerd(self.root / "docker", insecure=self.insecure).start()
            if self.with_engine26:
                self.dockerd26 = ChrootDockerd(self.root / "d26").start()
        return self

    def stop(self) -> None:
        for part in ("dockerd", "dockerd26", "hub_registry", "lan_registry", "lan2_registry", "lan3_registry",
                     "pull_through"):
            obj = getattr(self, part, None)
            if obj is not None:
                obj.stop()
        for part in ("hub_proxy", "lan_proxy", "lan2_proxy", "lan3_proxy", "token_proxy", "tokens"):
            obj = getattr(self, part, None)
            if obj is not None:
                obj.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def proxies(self) -> list[FaultProxy]:
        return [self.hub_proxy, self.lan_proxy, self.lan2_proxy, self.lan3_proxy, self.token_proxy]

    def clear_faults(self) -> None:
        for p in self.proxies:
            p.clear()

    @property
    def hub(self) -> str:
        return self.hub_proxy.address

    @property
    def lan(self) -> str:
        return self.lan_proxy.address

    @property
    def lan2(self) -> str:
        return self.lan2_proxy.address

    @property
    def lan3(self) -> str:
        return self.lan3_proxy.address

    @property
    def docker_host(self) -> str:
        assert self.dockerd is not None
        return self.dockerd.host

    def engines(self) -> dict[str, str]:
        """Both engines by name: the DOCKER_HOST of each."""
        assert self.dockerd is not None and self.dockerd26 is not None
        return {"20.10-classic": self.dockerd.host, "26.1-containerd": self.dockerd26.host}

    def client(self, address: str, creds: Credentials | None = None,
               timeouts: Timeouts | None = None) -> RegistryClient:
        return RegistryClient(Transport(address, credentials=creds, timeouts=timeouts))

    def hub_client(self, creds: Credentials | None = HUB_CREDS) -> RegistryClient:
        return self.client(self.hub, creds)

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that should use this stack."""
        env = dict(os.environ)
        if self.dockerd:
            env["DOCKER_HOST"] = self.dockerd.host
        return env
