# One image for the API, the worker and one-off commands; docker-compose.yml runs it every way.

# Build the wheels (symptrack's and its dependencies') in a throwaway stage.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY api ./api
COPY models ./models
COPY services ./services
RUN pip wheel --wheel-dir /wheels .

# The image: a plain (non-editable) install, no compiler, no sources, a user without privileges.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SYMPTRACK_DATA_DIR=/var/lib/symptrack
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels symptrack \
 && useradd --system --uid 10001 --home-dir /var/lib/symptrack --create-home symptrack
USER symptrack
WORKDIR /var/lib/symptrack
EXPOSE 8000
# The API's liveness; the worker's service in docker-compose.yml checks its heartbeat file instead.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["symptrack", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
