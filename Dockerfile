# One image for the API and the worker; docker-compose.yml runs it both ways.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 symptrack
WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
COPY api/__init__.py api/
COPY models/__init__.py models/
COPY services/__init__.py services/
RUN pip install -e .

COPY alembic.ini ./
COPY alembic ./alembic
COPY api ./api
COPY models ./models
COPY services ./services

USER symptrack
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["symptrack", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
