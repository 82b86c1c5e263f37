# Corridor's image: one image for every role; the command chooses it
# (compose.yaml: `corridor db upgrade`, `corridor run --no-worker`, `corridor worker`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HUB_APP_INSTANCE_DIR=/var/lib/corridor \
    # Every process of a container shares its metrics through this directory
    # (hub/metrics.py); compose.yaml mounts a fresh tmpfs there.
    PROMETHEUS_MULTIPROC_DIR=/run/corridor/metrics

RUN useradd --system --home-dir /var/lib/corridor --create-home corridor \
    && mkdir -p /run/corridor/metrics && chown corridor /run/corridor/metrics

WORKDIR /opt/corridor
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY pyproject.toml wsgi.py ./
COPY hub ./hub
COPY connectors ./connectors
COPY config ./config
COPY migrations ./migrations
RUN pip install --no-cache-dir --no-deps .

USER corridor
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/api/health', timeout=4)" || exit 1
CMD ["corridor", "run", "--no-worker", "--host", "0.0.0.0", "--port", "5000"]
