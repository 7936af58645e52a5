# veloz-gateway container image.
#
#   docker build -t veloz-gateway .
#   docker run --rm -p 127.0.0.1:8080:8080 -v veloz-data:/data \
#       -e VELOZ_AUTH_ENABLED=true -e VELOZ_ADMIN_PASSWORD=... veloz-gateway
#
# Inside a container the gateway has to listen on 0.0.0.0 (VELOZ_HOST below). It refuses to
# bind a non-loopback address while authentication is disabled, so the container exits at
# start with a one-line error unless auth is on (or, for a trusted network only,
# VELOZ_ALLOW_INSECURE=true).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/veloz

# Exact versions from the lock (it also holds the test tools; they are small and unused here).
COPY requirements.lock ./
RUN python -m pip install -r requirements.lock

RUN groupadd --system --gid 10001 veloz \
    && useradd --system --uid 10001 --gid veloz --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin veloz \
    && mkdir -p /data \
    && chown veloz:veloz /data

COPY alembic.ini ./
COPY migrations/ ./migrations/
COPY app/ ./app/

ENV VELOZ_HOST=0.0.0.0 \
    VELOZ_PORT=8080 \
    VELOZ_DATA_DIR=/data

VOLUME ["/data"]
EXPOSE 8080
USER veloz

# No curl in the slim image: ask /health with the standard library. Any error exits non-zero.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('VELOZ_PORT', '8080'), timeout=3)"]

CMD ["python", "-m", "app"]
