# PatchPilot: one binary, SQLite by default (mount /data), Postgres via DATABASE_URL.
# NOTE: this image was not built on the development machines (no Docker engine there).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin patchpilot

FROM debian:bookworm-slim
# bubblewrap is the sandbox; git and ca-certificates for cloning. The toolchains repository
# commands get: Python 3 with venv and pip, Node.js with npm/npx, a C toolchain (crates with
# build scripts), Java with Maven, and Rust (below).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       bubblewrap ca-certificates git curl build-essential pkg-config \
       python3 python3-venv python3-pip nodejs npm default-jdk-headless maven \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /data patchpilot
# Rust under /opt (readable by the sandbox uids, bound read-only in both tiers); each
# repository's CARGO_HOME is its own writable cache, so this one only provides `bin`.
ENV RUSTUP_HOME=/opt/rustup CARGO_HOME=/opt/cargo
RUN curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.95.0 --no-modify-path \
    && chmod -R a+rX /opt/rustup /opt/cargo
COPY --from=build /src/target/release/patchpilot /usr/local/bin/patchpilot
WORKDIR /data
ENV PATH=/opt/cargo/bin:$PATH \
    DATABASE_URL=sqlite:///data/patchpilot.db \
    PATCHPILOT_ADDR=0.0.0.0:3000 \
    PATCHPILOT_DATA_DIR=/data/work \
    PATCHPILOT_SANDBOX_TOOLCHAINS=/opt/rustup,/opt/cargo \
    PATCHPILOT_LOG_FORMAT=json
EXPOSE 3000
# Runs as root so the sandbox can drop to its dedicated uids; see the README's Sandbox section.
# Go and Gradle are not included: add them under /opt and list them in
# PATCHPILOT_SANDBOX_TOOLCHAINS (e.g. /opt/rustup,/opt/cargo,/opt/go).
ENTRYPOINT ["patchpilot"]
CMD ["serve"]
