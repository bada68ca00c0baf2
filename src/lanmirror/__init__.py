"""lanmirror: keep a CI fleet's nightly images on the LAN, off Docker Hub's pull limit."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lanmirror")  # from the git tag, through setuptools-scm
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
