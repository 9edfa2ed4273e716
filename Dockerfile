# syntax=docker/dockerfile:1
# One image for every process: the API (gunicorn), the Dramatiq workers, the
# migrations and the JWT key Job. The Helm chart chooses the command; CMD is the API.
# No keys or secrets are baked in: they arrive as mounted Kubernetes Secrets.

# Override to use a mirror or a digest-pinned base (multi-arch: amd64 and arm64):
# --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<index digest>
# (`docker buildx imagetools inspect python:3.11-slim-bookworm` prints it).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first: this layer is rebuilt only when the lock changes. Every
# package, transitive ones included, is pinned with its hashes (`make lock`), so
# two builds of one commit install the same files and a tampered one fails.
COPY pyproject.toml requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps --requirement requirements.lock

# `skaffold dev` builds with INSTALL_DEV_TOOLS=true for dramatiq --watch.
ARG INSTALL_DEV_TOOLS=false
RUN if [ "$INSTALL_DEV_TOOLS" = "true" ]; then \
        pip install --no-cache-dir "watchdog==6.0.0"; \
    fi

# Then the sources (.dockerignore lets only the packages in).
COPY . .
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info requirements.lock

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="twitter-backend" \
      org.opencontainers.image.description="Falcon API, Dramatiq workers, migrations and key tooling"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000
# A fixed numeric uid/gid, so Kubernetes can verify runAsNonRoot.
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# /app is what runs (PYTHONPATH), so `skaffold dev` can sync into it; the copy in
# the venv only carries the package metadata. Root-owned: the app cannot modify it.
COPY --from=build /src /app
RUN python -m compileall -q /app
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "--config", "python:api.gunicorn_conf", "api.wsgi:app"]
