# The limbwatch services (api, worker, gateway, simulator) in one image; docker-compose.yml
# runs each as its own container. Dependencies come pinned from requirements.lock
# (deploy/lock.py writes it from pyproject.toml), installed without resolving anything.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# an unprivileged user; /data (record store) and /spool (the gateway's spool) are its own, so
# named volumes mounted there start out writable by it
RUN groupadd --system --gid 10001 limbwatch \
    && useradd --system --uid 10001 --gid limbwatch --home-dir /home/limbwatch --create-home \
        --shell /usr/sbin/nologin limbwatch \
    && mkdir -p /data /spool /config \
    && chown limbwatch:limbwatch /data /spool

WORKDIR /opt/limbwatch

COPY requirements.lock ./
RUN pip install --no-deps --requirement requirements.lock

COPY pyproject.toml README.md ./
COPY limbwatch ./limbwatch
COPY analysis ./analysis
COPY firmware_sim ./firmware_sim
COPY ingest ./ingest
COPY api ./api
COPY worker ./worker
COPY app ./app
# the package itself; --no-deps: everything it needs is already installed from the lock (pip
# builds it with pyproject.toml's build backend, setuptools>=69, in an isolated environment)
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info \
    && cp -r firmware_sim/rigs /opt/limbwatch/rigs

USER 10001:10001
WORKDIR /data
EXPOSE 8000

# the API's /healthz (200 while its store can be used); compose turns it off for the services
# that serve no HTTP (worker, gateway, sim)
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

ENTRYPOINT ["limbwatch"]
CMD ["serve", "--no-worker", "--host", "0.0.0.0", "--store", "sqlite:/data/limbwatch.db"]
