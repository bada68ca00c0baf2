"""The node mirror (`lanmirror serve`): a long-running registry mirror on a runner host, which
every Docker daemon on the host pulls Docker Hub images through (`registry-mirrors`). Tags are
checked against the Hub's digest as resolve checks them, blobs are read in parallel ranges from
the LAN replicas (the Hub last) once per host into a content-addressed disk cache (`store`), and
concurrent clients share that one read (`fill`). Read-only: no push, no catalog."""
