# Slim runtime image: the package installed exactly as `make install` does (pip + constraints.txt),
# served by gunicorn with the shared config, as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CDS_BIND=0.0.0.0:8080

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY cds_service ./cds_service
COPY cards ./cards
RUN python -m pip install --upgrade pip \
    && python -m pip install -c constraints.txt . \
    && useradd --system --uid 10001 --no-create-home cds \
    && mkdir -p /app/instance && chown cds /app/instance

USER cds
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/cds-services', timeout=2).status == 200 else 1)"
CMD ["spine-cds", "serve"]
