# hub: one image for the API server (hub serve) and the workers (hub worker).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HUB_HOME=/var/lib/hub HUB_FLOWS_DIR=/app/flows HUB_PROMPTS_DIR=/app/prompts

WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY connectors ./connectors
RUN pip install . && useradd --system --home /var/lib/hub hub && mkdir -p /var/lib/hub && chown hub /var/lib/hub
COPY flows ./flows
COPY prompts ./prompts

USER hub
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health').status != 200)"
CMD ["hub", "serve", "--host", "0.0.0.0", "--port", "8080"]
