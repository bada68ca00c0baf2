"""The Docker daemon, through docker-py: local cache lookups, pulls with a stall guard, tag, push.

docker-py reports pull and push failures *inside* the JSON progress stream and returns normally;
every stream here is read to the end and its errors raised, classified like HTTP errors so the
one retry policy can tell a reset (retry) from a pull limit or a missing tag (do not).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import docker
import docker.auth
import docker.errors
import requests

from lanmirror.authn import Credentials
from lanmirror.authn.dockerconfig import load_docker_config
from lanmirror.authn.secretenv import blanked_secrets
from lanmirror.daemon.classify import classify_stream_error
from lanmirror.daemon.dockerpy import PullStream, pin_auth_configs
from lanmirror.daemon.pullwatch import Guards, watch
from lanmirror.errors import (
    AuthError,
    DaemonTimeout,
    EngineError,
    LanmirrorError,
    NotFound,
    PullLimitExceeded,
    SlowPullError,
    StallError,
    TransientError,
)
from lanmirror.name import DIGEST_RE, parse
from lanmirror.retry import DEFAULT_POLICY, RetryPolicy

log = logging.getLogger("lanmirror.daemon.engine")

ProgressFn = Callable[[int, int, str], None]

@dataclass(frozen=True)
class LocalImage:
    id: str
    repo_digests: tuple[str, ...]
    # After a pull: seconds until the last layer was downloaded (the rest was extraction), if known.
    download_seconds: float | None = None
    # After a pull: the bytes of the layers the daemon downloaded, as its progress messages sized
    # them (layers it already held count none; the containerd store leaves small layers unsized).
    bytes: int | None = None


class Engine:
    """A Docker daemon, addressed by DOCKER_HOST or the default socket."""

    def __init__(self, base_url: str | None = None, *, timeout: float = 60.0, policy: RetryPolicy = DEFAULT_POLICY):
        self.base_url = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        self.policy = policy
        self._timeout = timeout
        self._api: docker.APIClient | None = None
        # Pulls asked of the daemon, by registry: a direct pull from Docker Hub costs one counted pull
        # (the daemon's own manifest GET), however it ends.
        self.pulls: Counter[str] = Counter()

    @property
    def api(self) -> docker.APIClient:
        if self._api is None:
            try:
                api = docker.APIClient(base_url=self.base_url, version="auto", timeout=self._timeout,
                                       credstore_env=blanked_secrets())
                # docker-py read ~/.docker on its own; every lookup it makes (a pull or a distribution
                # inspect without explicit auth, a login) must follow our rules instead.
                pin_auth_configs(api, load_docker_config())
                self._api = api
            except docker.errors.DockerException as exc:
                raise EngineError(
                    f"Docker daemon not reachable at {self.base_url} ({exc}); is dockerd running? "
                    "set DOCKER_HOST to its socket"
                ) from None
        return self._api

    def _call(self, what: str, fn: Callable[[], Any], source: str = "docker") -> Any:
        try:
            return fn()
        except docker.errors.NotFound as exc:
            raise NotFound(f"{source}: {what}: {exc.explanation or exc}", registry=source, status=404) from None
        except docker.errors.APIError as exc:
            raise classify_stream_error(f"{what}: {exc.explanation or exc}", source) from None
        except docker.errors.DockerException as exc:
            raise EngineError(f"{source}: {what}: {exc}") from None
        except requests.exceptions.ReadTimeout:
            raise DaemonTimeout(f"{source}: {what}: the Docker daemon at {self.base_url} took the request and "
                                f"sent no answer within {self._timeout:g}s") from None
        except OSError as exc:
            raise EngineError(f"Docker daemon not reachable at {self.base_url}: {exc}") from None

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    def ping(self) -> bool:
        return bool(self._call("ping", lambda: self.api.ping()))

    def info(self) -> dict[str, Any]:
        return dict(self._call("info", lambda: self.api.info()))

    def image_store(self) -> str:
        """"containerd" (the containerd image store, default on fresh Engine 29 installs) or "classic".
        It matters for a cancelled pull: the classic store releases the layers that pull had completed
        (seen with Engine 20.10: none left in layerdb), so the next source fetches them again; the
        containerd store keeps them in its content store (seen with Engine 26.1)."""
        try:
            status = self.info().get("DriverStatus") or []
        except LanmirrorError:
            return "unknown"
        return "containerd" if any("containerd.snapshotter" in str(v) for _, v in status) else "classic"

    def insecure_registries(self) -> list[str]:
        """Registries (HOST[:PORT] or CIDR) the daemon talks plain HTTP to, from `docker info`."""
        cfg = self.info().get("RegistryConfig") or {}
        out = list(cfg.get("InsecureRegistryCIDRs") or [])
        for name, index in (cfg.get("IndexConfigs") or {}).items():
            if isinstance(index, dict) and index.get("Secure") is False:
                out.append(name)
        return out

    # -- local cache ------------------------------------------------------------------------

    def local_image(self, ref: str) -> LocalImage | None:
        try:
            data = self._call(f"inspect {ref}", lambda: self.api.inspect_image(ref))
        except NotFound:
            return None
        return LocalImage(data["Id"], tuple(data.get("RepoDigests") or ()))

    def tagged(self, repository: str) -> list[tuple[str, str, int]]:
        """(tag, image ID, size) of every image tagged in `repository` (e.g. rocm/sgl-dev)."""
        out = []
        for image in self._call(f"list images of {repository}", lambda: self.api.images(name=repository)):
            for ref in image.get("RepoTags") or []:
                name, _, tag = ref.rpartition(":")
                if name == repository:
                    out.append((tag, str(image["Id"]), int(image.get("Size") or 0)))
        return out

    def image_count(self) -> int:
        """How many images the daemon holds (0 at a job's start: a throwaway store)."""
        return len(self._call("list images", lambda: self.api.images(quiet=True)))

    def images_in_use(self) -> set[str]:
        """IDs of the images that a container, running or stopped, was created from."""
        containers = self._call("list containers", lambda: self.api.containers(all=True))
        return {str(c["ImageID"]) for c in containers if c.get("ImageID")}

    def untag(self, ref: str) -> None:
        """Remove the tag `ref` (and the image, once no tag and no container needs it)."""
        self._call(f"remove {ref}", lambda: self.api.remove_image(ref, noprune=False))

    def layers_size(self) -> int:
        """Bytes of all image layers the daemon holds (what removing images really frees)."""
        return int(self._call("disk usage", lambda: self.api.df()).get("LayersSize") or 0)

    def tag(self, source: str, repository: str, tag: str) -> None:
        ok = self._call(f"tag {source}", lambda: self.api.tag(source, repository, tag, force=True))
        if not ok:
            raise EngineError(f"docker: tagging {source} as {repository}:{tag} failed")

    def inspect_distribution(self, ref: str, creds: Credentials | None = None) -> str:
        """Digest of `ref` as the *daemon* sees it (a GET on the registry: LAN use only), with the
        registry's login if it needs one (the daemon may never have run `docker login` for it)."""
        auth = creds.daemon_auth() if creds else None
        data = self._call(f"distribution inspect {ref}",
                          lambda: self.api.inspect_distribution(ref, auth_config=auth))
        descriptor = data.get("Descriptor") if isinstance(data, dict) else None
        digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
        if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
            # The daemon passes on what the registry said; a LAN's word never reaches outputs unchecked.
            raise EngineError(f"docker: distribution inspect {ref}: the answer carried no valid sha256 digest")
        return digest

    def login(self, creds: Credentials, registry: str) -> None:
        def attempt() -> None:
            self._call(f"login to {registry}", lambda: self.api.login(
                creds.username, password=creds.password, registry=registry, reauth=True))

        self.policy.call(attempt, f"docker login {registry}")

    # -- streams ----------------------------------------------------------------------------

    @staticmethod
    def _consume(stream: Iterable[dict[str, Any]], source: str, on_message: Callable[[dict[str, Any]], None]) -> None:
        for msg in stream:
            if "error" in msg or "errorDetail" in msg:
                detail = msg.get("errorDetail") or {}
                raise classify_stream_error(str(detail.get("message") or msg.get("error")), source)
            on_message(msg)

    def pull(
        self,
        ref: str,
        *,
        source: str,
        stall_timeout: float = 60.0,
        timeout: float = 3600.0,
        creds: Credentials | None = None,
        on_progress: ProgressFn | None = None,
        min_rate: float = 0.0,
        rate_window: float = 30.0,
        counted: bool = True,
    ) -> LocalImage:
        """Pull `ref`, aborting when no progress message arrives for `stall_timeout` seconds, when
        the download rate stays below `min_rate` bytes/s (0: no floor) for `rate_window` seconds of
        downloading, when the bytes left cannot arrive within `timeout` at the current rate, or when
        the whole pull exceeds `timeout` (the original once sat 4h16m in a pull with none of these)."""
        name = parse(ref)
        if counted:  # a pull through the daemon's registry mirror is not a pull from the registry
            self.pulls[name.registry] += 1
        where = name.familiar_repository
        # By digest, the daemon takes `repo@digest` as the image and no tag; by tag, the two apart.
        params = {"fromImage": f"{where}@{name.digest}"} if name.digest else {"fromImage": where,
                                                                             "tag": name.tag or "latest"}
        headers = {}
        if creds:
            # The pull's own credentials: a runner that never ran `docker login` for this registry still pulls.
            headers["X-Registry-Auth"] = docker.auth.encode_header(creds.daemon_auth())
        stream = self._call(f"pull {ref}", lambda: PullStream(self.api, params, headers), source)
        self._call(f"pull {ref}", stream.raise_for_status, source)
        guards = Guards(stall_timeout, timeout, min_rate, rate_window)
        out = watch(stream.messages(), stream.abort, guards, ref,
                    lambda messages, on_message: self._consume(messages, source, on_message), on_progress)
        if out.reason:
            if out.reader_stopped:
                stream.close()
            # The reason first: a loopback endpoint's reference is long, and summaries cut lines.
            message = f"{source}: pull aborted: {out.reason} (pull of {ref})"
            if out.slow is not None:
                # Measured on both stores (tests/integration/test_slow_pulls.py): the containerd
                # store keeps the layers a cancelled pull completed, the classic one drops them.
                kept = {"classic": 0, "containerd": out.slow.completed}.get(self.image_store())
                raise SlowPullError(message, rate=out.slow.rate, floor=min_rate, completed=out.slow.completed,
                                    kept=kept, unsized=out.slow.unsized)
            raise StallError(message)
        if out.failure is not None:
            exc = out.failure
            if isinstance(exc, (EngineError, NotFound, AuthError, PullLimitExceeded, TransientError)):
                raise exc
            raise TransientError(f"{source}: pull of {ref} broke off: {type(exc).__name__}: {exc}")
        image = self.local_image(ref)
        if image is None:
            raise EngineError(f"{source}: pull of {ref} finished but the image is not in the local cache")
        done = out.progress.downloaded
        return dataclasses.replace(image, download_seconds=round(done - out.started, 3) if done else None,
                                   bytes=out.progress.total)

    def push(self, repository: str, tag: str, *, source: str, creds: Credentials | None = None,
             on_progress: ProgressFn | None = None) -> str:
        """Push and return the digest the daemon reports. Stream errors are raised."""
        auth = creds.daemon_auth() if creds else None
        digest = ""

        def on_message(msg: dict[str, Any]) -> None:
            nonlocal digest
            aux = msg.get("aux") or {}
            if aux.get("Digest"):
                digest = str(aux["Digest"])
            if on_progress:
                detail = msg.get("progressDetail") or {}
                on_progress(int(detail.get("current") or 0), int(detail.get("total") or 0), str(msg.get("status", "")))

        # Not wrapped in the retry policy: the daemon already retries each layer upload five times,
        # and retrying the whole push on top would multiply a full disk into many minutes.
        stream = self._call(f"push {repository}:{tag}", lambda: self.api.push(
            repository, tag=tag, stream=True, decode=True, auth_config=auth), source)
        self._consume(stream, source, on_message)
        return digest
