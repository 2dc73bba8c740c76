# syntax=docker/dockerfile:1
# One image for all five services; the command picks the service:
#   docker run lanegate python -m lane_scheduler
ARG PYTHON_IMAGE=python:3.13.5-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY . .
RUN pip install -c constraints.txt .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LANEGATE_HEALTH_PORT=8080
RUN groupadd --system --gid 10001 lanegate \
    && useradd --system --uid 10001 --gid lanegate --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin lanegate
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001
EXPOSE 8080 8081 8082 8083 8084
# LANEGATE_HEALTH_PORT must match the port of the service the command starts.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LANEGATE_HEALTH_PORT', '8080'), timeout=4)"]
CMD ["python", "-m", "ingress_api"]
