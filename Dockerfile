# reelay: a Rust build stage, then a slim Debian runtime with ffmpeg and
# yt-dlp with its extras: Deno, yt-dlp-ejs, curl_cffi (installed by
# scripts/setup, the same command the README uses).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo ./.cargo
COPY build.rs ./
COPY link ./link
COPY src ./src
COPY scripts/build ./scripts/build
RUN scripts/build --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv ffmpeg \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY scripts/setup scripts/setup
# BGUTIL=true adds the PO-token provider plugin (its server: compose profile bgutil).
ARG BGUTIL=false
RUN if [ "$BGUTIL" = true ]; then scripts/setup --bgutil; else scripts/setup; fi
COPY --from=build /src/target/release/reelay /usr/local/bin/reelay
RUN useradd --system --uid 10001 --no-create-home reelay \
 && mkdir /cache && chown reelay /cache
USER reelay
ENV HOST=0.0.0.0 \
    PORT=8001 \
    ENVIRONMENT=production \
    YTDLP_PATH=/app/.venv/bin/yt-dlp \
    YTDLP_PYTHON=/app/.venv/bin/python
EXPOSE 8001
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s CMD ["reelay", "healthcheck"]
ENTRYPOINT ["reelay"]
