# bucketdav: an object store bucket as a filesystem over HTTP and WebDAV.
#
#   docker build -t bucketdav .
#   docker run --rm -p 8080:8080 -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY \
#       -e AWS_REGION=eu-west-1 bucketdav s3://my-bucket/
#   # or with a config file (shares, users, TLS):
#   docker run --rm -p 8443:8443 -v "$PWD/bucketdav.toml:/etc/bucketdav/bucketdav.toml:ro" \
#       -e BUCKETDAV_CONFIG=/etc/bucketdav/bucketdav.toml bucketdav
#
# Configured by BUCKETDAV_* environment variables and/or a mounted TOML file; see
# docs/OPERATIONS.md. The admin port (9180: /livez, /readyz, /metrics) serves the
# HEALTHCHECK and the Kubernetes probes.

# ---- build: install the package and its runtime dependencies into a venv -----------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/bucketdav
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN /opt/bucketdav/bin/pip install --no-cache-dir .

# ---- runtime: the venv only, as an unprivileged user --------------------------------------
FROM python:3.11-slim

RUN useradd --system --no-log-init --uid 10001 --user-group --no-create-home \
        --shell /usr/sbin/nologin bucketdav \
    && mkdir -p /srv/bucketdav \
    && chown bucketdav:bucketdav /srv/bucketdav
COPY --from=build /opt/bucketdav /opt/bucketdav

ENV PATH=/opt/bucketdav/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BUCKETDAV_HOST=0.0.0.0 \
    BUCKETDAV_PORT=8080 \
    BUCKETDAV_ADMIN_HOST=0.0.0.0 \
    BUCKETDAV_ADMIN_PORT=9180 \
    BUCKETDAV_LOG_FORMAT=json

USER 10001:10001
# A local-folder share lives here (mount a volume); with no SOURCE, ./data is served.
WORKDIR /srv/bucketdav
EXPOSE 8080 9180

# No curl in the slim image: the standard library asks the admin port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('BUCKETDAV_ADMIN_PORT', '9180') + '/livez', timeout=4)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["bucketdav", "serve"]
