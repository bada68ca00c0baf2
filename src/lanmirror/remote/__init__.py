"""Registry verbs over one `Transport` (like go-containerregistry's `pkg/v1/remote`): manifests,
blobs, uploads; ranged and resumable blob reads (`blobread`); chunked, resumable writes
(`blobwrite`). No policy: which registry to ask and what to do on failure is for `ops`."""
