"""HTTP to registries: sessions, the insecure rule, auth challenges and tokens, timeouts, retries.

Knows nothing about images: `remote` builds the registry verbs on top of it.
"""

from lanmirror.transport.client import Timeouts, Transport, error_detail
from lanmirror.transport.scheme import host_of, is_insecure, is_loopback

__all__ = ["Timeouts", "Transport", "error_detail", "host_of", "is_insecure", "is_loopback"]
