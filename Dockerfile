# One image for every service of docker-compose.yml: worker, beat, flower and the one-off cli.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 1000 app
WORKDIR /app
COPY pyproject.toml README.md ./
COPY campaigns ./campaigns
COPY workers ./workers
COPY dispatcher ./dispatcher
RUN pip install --no-cache-dir ".[flower]"

# Celery warns when it runs as root; the workers need no privileges.
USER app
CMD ["smsdispatch", "--help"]
