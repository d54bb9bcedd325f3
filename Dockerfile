# PatchPilot: one binary, SQLite by default (mount /data), Postgres via DATABASE_URL.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin patchpilot

FROM debian:bookworm-slim
# bubblewrap is the sandbox; git and ca-certificates for cloning; python3 for Python projects.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap ca-certificates git python3 python3-pytest \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /data patchpilot
COPY --from=build /src/target/release/patchpilot /usr/local/bin/patchpilot
WORKDIR /data
ENV DATABASE_URL=sqlite:///data/patchpilot.db \
    PATCHPILOT_ADDR=0.0.0.0:3000 \
    PATCHPILOT_DATA_DIR=/data/work \
    PATCHPILOT_LOG_FORMAT=json
EXPOSE 3000
# Runs as root so the sandbox can drop to its dedicated uid; see the README's Sandbox section.
ENTRYPOINT ["patchpilot"]
CMD ["serve"]
