"""Registry verbs over one `Transport` (like go-containerregistry's `pkg/v1/remote`), and the
data they move (like its `pkg/v1`): `manifest` (media types, descriptors, manifests kept byte for
byte, the index tree), `hashing` (streams checked on the way), `ratelimit` (Docker Hub's headers),
`upload` (an upload session on the wire); `registry` (the client: manifests, blobs, uploads);
ranged and resumable blob reads (`blobread`); chunked, resumable writes (`blobwrite`). No policy:
which registry to ask and what to do on failure is for `ops`."""
