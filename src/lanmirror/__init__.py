"""lanmirror: keep a CI fleet's nightly images on the LAN, off Docker Hub's pull limit."""

__version__ = "0.1.0"
