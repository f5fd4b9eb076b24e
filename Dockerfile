# syntax=docker/dockerfile:1
# tinyfleet service image: the wheel `uv build` makes from this checkout, installed with the exact versions of
# uv.lock (hash-checked), run as a non-root user. Used by docker-compose.yml (service, ingest workers, fleet
# simulator). tflite-micro publishes Linux x86_64 wheels only: build for linux/amd64.

# ---------------------------------------------------------------------------------------------------- build
FROM python:3.11-slim-bookworm AS build
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock README.md LICENSE ./
COPY service ./service
COPY device_sdk/python ./device_sdk/python
COPY dashboards ./dashboards
# The wheel (same command as the tests: dist/tinyfleet-<version>-py3-none-any.whl) and the locked runtime
# requirements (no extras: the service needs none of train/litert/embedded/dev).
RUN uv build --wheel --out-dir /dist \
 && uv export --frozen --no-emit-project --format requirements-txt --output-file /dist/requirements.txt

# -------------------------------------------------------------------------------------------------- runtime
FROM python:3.11-slim-bookworm
# gid 1883 = the mosquitto group of the eclipse-mosquitto image: the broker files the service writes into the
# shared volume are mode 0640, group mosquitto (TINYFLEET_BROKER_FILE_GROUP), so the broker can read them.
RUN groupadd --system --gid 1883 mosquitto \
 && groupadd --system --gid 10001 tinyfleet \
 && useradd --system --uid 10001 --gid tinyfleet --groups mosquitto --home-dir /var/lib/tinyfleet \
      --shell /usr/sbin/nologin tinyfleet \
 && mkdir -p /var/lib/tinyfleet /var/lib/tinyfleet-broker /app \
 && chown tinyfleet:tinyfleet /var/lib/tinyfleet \
 && chown tinyfleet:mosquitto /var/lib/tinyfleet-broker && chmod 0750 /var/lib/tinyfleet-broker
COPY --from=build /dist /tmp/dist
RUN python -m venv /opt/tinyfleet \
 && /opt/tinyfleet/bin/pip install --no-cache-dir --require-hashes --no-deps -r /tmp/dist/requirements.txt \
 && /opt/tinyfleet/bin/pip install --no-cache-dir --no-deps /tmp/dist/tinyfleet-*.whl \
 && rm -rf /tmp/dist
COPY --chmod=0755 deploy/compose/tinyfleet-entrypoint.sh /usr/local/bin/tinyfleet-entrypoint
COPY rules /app/rules
ENV PATH=/opt/tinyfleet/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TINYFLEET_HTTP_HOST=0.0.0.0 \
    TINYFLEET_HTTP_PORT=8080 \
    TINYFLEET_RULES_DIR=/app/rules \
    TINYFLEET_DATA_DIR=/var/lib/tinyfleet
WORKDIR /var/lib/tinyfleet
USER tinyfleet:tinyfleet
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["tinyfleet-entrypoint"]
CMD ["serve"]
