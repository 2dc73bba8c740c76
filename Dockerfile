# syntax=docker/dockerfile:1
# One image for all five services; the command picks the service:
#   docker run lanegate python -m lane_scheduler
# The operator CLI is in it too: docker run lanegate lanegate check
# The base image is pinned by digest (python:3.13.5-slim-bookworm); bump both together.
ARG PYTHON_IMAGE=python:3.13.5-slim-bookworm@sha256:4c2cf9917bd1cbacc5e9b07320025bdb7cdf2df7b0ceaccb55e9dd7e30987419

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from the pins alone: a source change reuses this layer. Every pinned
# dependency ships a wheel, so no compiler is needed.
COPY constraints.txt pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install --only-binary=:all: -c constraints.txt -r requirements.txt
COPY libs libs
COPY services services
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps -c constraints.txt .

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="lanegate" \
      org.opencontainers.image.description="Multi-tenant WhatsApp messaging gateway" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.13.5-slim-bookworm"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 lanegate \
    && useradd --system --uid 10001 --gid lanegate --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin lanegate
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001
EXPOSE 8080 8081 8082 8083 8084
# Asks the service the container runs (its command, PID 1) on that service's own port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "lanegate.healthcheck"]
CMD ["python", "-m", "ingress_api"]
