# hub: one image for the API server (hub serve) and the workers (hub worker).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HUB_HOME=/var/lib/hub HUB_FLOWS_DIR=/app/flows HUB_PROMPTS_DIR=/app/prompts

WORKDIR /app
# the dependencies first, from pyproject.toml alone: a change to the code reuses this layer
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && useradd --system --home /var/lib/hub hub && mkdir -p /var/lib/hub && chown hub /var/lib/hub
COPY hub ./hub
COPY connectors ./connectors
RUN pip install --no-deps .
COPY flows ./flows
COPY prompts ./prompts
COPY models.yaml ./

USER hub
EXPOSE 8080
# right for either command: the API answers /health on :8080; a worker (no HTTP) had its last poll of
# the queue answered by Redis within 30 s (it keeps $HUB_HOME/worker.alive fresh). See docs/deploy.md.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=5 CMD ["hub", "health"]
CMD ["hub", "serve", "--host", "0.0.0.0", "--port", "8080"]
