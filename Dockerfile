# Slim runtime image: the wheel built from this checkout, installed with constraints.txt exactly as
# `make install` pins it, served by gunicorn with the shared config, as a non-root user.
# tests/test_docker_steps.py runs these same steps without a Docker engine: keep them in step.

# Build stage: only the wheel leaves it (card texts, value sets and fixtures inside the package).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY cds_service ./cds_service
COPY cards ./cards
COPY docs ./docs
COPY fhir_fixtures ./fhir_fixtures
RUN python -m pip wheel --no-deps --wheel-dir /wheels .

# Runtime stage: no source tree in the working directory, so nothing can shadow the installed package.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CDS_BIND=0.0.0.0:8080
WORKDIR /app
COPY constraints.txt ./
COPY --from=build /wheels /wheels
RUN python -m pip install --upgrade pip \
    && python -m pip install -c constraints.txt /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --no-create-home cds \
    && mkdir -p /app/instance && chown cds /app/instance

USER cds
EXPOSE 8080
# SIGTERM (docker stop, Kubernetes) is a graceful stop: in-flight requests get CDS_GRACEFUL_TIMEOUT s.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
CMD ["spine-cds", "serve"]
