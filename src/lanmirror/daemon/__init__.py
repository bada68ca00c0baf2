"""The Docker engine, through docker-py: local images, pulls with a stall guard, tag, push, login.
Never speaks HTTP to a registry itself: the daemon does."""

from lanmirror.daemon.engine import Engine, LocalImage, ProgressFn

__all__ = ["Engine", "LocalImage", "ProgressFn"]
