"""The loopback registry the daemon pulls from during one resolve (`endpoint`), fed by `remote`'s
blob reader from every source that holds the image (`feed`). Knows nothing of how the sources
were chosen: that is `ops`."""

from lanmirror.serve.endpoint import Endpoint
from lanmirror.serve.feed import BlobSources, Source

__all__ = ["BlobSources", "Endpoint", "Source"]
