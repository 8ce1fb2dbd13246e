# The image of every Python service, named by build arguments; docker-compose.yml builds each:
#   docker build -f deploy/service.Dockerfile --build-arg SERVICE=ingest --build-arg PORT=8001 .
# SERVICE is the workspace package without its prefix (ingest -> portal-ingest, python -m
# portal_ingest); PORT is the service's default HTTP port.

# The desk's rich text editor, from npm (package.json's dependencies; the dev tools are left out).
# Only moderation's package ships it; the stage is shared, so it is built once for all images.
FROM node:20-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim AS build
ARG SERVICE
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
COPY . .
COPY --from=assets /app/node_modules/quill/dist/quill.js /app/node_modules/quill/dist/quill.snow.css \
     services/moderation/src/portal_moderation/desk/static/vendor/
RUN test -n "$SERVICE" && uv sync --frozen --no-dev --no-editable --package "portal-${SERVICE}"

FROM python:3.11-slim
ARG SERVICE
ARG PORT
RUN useradd --system --uid 10001 portal
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 HTTP_HOST=0.0.0.0 HTTP_PORT=${PORT} \
    PORTAL_MODULE=portal_${SERVICE}
USER portal
EXPOSE ${PORT}
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"HTTP_PORT\"]}/healthz')"
CMD ["sh", "-c", "exec python -m \"$PORTAL_MODULE\""]
