# lanmirror as a container, for hosts without Python:
#   docker run --rm --network host -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" IMAGE resolve --repo rocm/sgl-dev --base-tag ...
# and the node mirror (examples/systemd/lanmirror-serve-container.service):
#   docker run -d --network host -v /var/cache/lanmirror:/cache --env-file /etc/lanmirror/serve.env \
#     IMAGE serve --listen 127.0.0.1:5080 --cache-dir /cache --repo rocm/sgl-dev --lan-registry ...
#
# Built offline: the wheels (lanmirror with its `serve` extra, and their dependencies) are made on
# the host first,
#   pip wheel --wheel-dir build/wheels '.[serve]'
# and the base image is a build argument, since nothing may be pulled here (the tests use a
# debootstrapped Debian with python3; python:3.12-slim works the same where pulling is allowed).
ARG BASE=python:3.12-slim
FROM ${BASE}

# The release workflow passes the tag's version; it equals `lanmirror --version` of the wheel.
ARG VERSION=0.0.0
LABEL org.opencontainers.image.title="lanmirror" \
      org.opencontainers.image.description="Mirror nightly images to a LAN registry and resolve the newest one without spending Docker Hub pull quota" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/OWNER/lanmirror"

COPY build/wheels /tmp/wheels
RUN python3 -m venv /opt/lanmirror \
 && /opt/lanmirror/bin/pip install --no-index --no-cache-dir --find-links /tmp/wheels 'lanmirror[serve]' \
 && rm -rf /tmp/wheels \
 && (useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin lanmirror 2>/dev/null \
     || adduser --system --uid 10001 --no-create-home lanmirror)

ENV PATH=/opt/lanmirror/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    DOCKER_CONFIG=/tmp/.docker
USER 10001
ENTRYPOINT ["lanmirror"]
CMD ["--help"]
