# One image for the four services; the command picks the service.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY itte itte
COPY common common
COPY schemas schemas
COPY services services
RUN pip install --no-cache-dir . && useradd --system --home /app itte
USER itte
ENTRYPOINT ["itte"]
