# One image for the four services; the command picks the service.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
# Exact versions, each file checked against its hash (make lock).
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY itte itte
COPY common common
COPY schemas schemas
COPY services services
RUN pip install --no-cache-dir --no-deps . && useradd --system --home /app itte
USER itte
ENTRYPOINT ["itte"]
