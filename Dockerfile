# syntax=docker/dockerfile:1
#
# The relay as a static binary in an empty image.
#
#   docker build -t relay .
#   docker run --rm -p 5555:5555 -p 5556:5556 -p 5558:5558 -p 5559:5559 -p 9559:9559 \
#       -v "$PWD/config:/config:ro" relay
#
# Stage `build` builds `relay` and `zmq-adaptor` for x86_64-unknown-linux-musl: the code is pure Rust
# (no C dependencies, no build scripts compiling C), so the musl target from rustup links it fully
# statically with its self-contained linker and no musl-gcc is needed. On musl the binaries allocate
# with dlmalloc (pure Rust) instead of musl's slower malloc (relay/src/alloc.rs; figures in
# docs/deploy.md). Stage `runtime` (the default) is `scratch` with the two binaries and an empty,
# world-writable /tmp (the adaptor's default ipc endpoints are under /tmp).
#
# Where rust:slim cannot be pulled (CI, air-gapped hosts), stage `runtime-local` makes the same
# image from binaries built on the host (scratch needs no pull; the classic builder works too):
#
#   cargo build --release --target x86_64-unknown-linux-musl -p relay
#   docker build --target runtime-local -t relay .
#
# scripts/check-docker.sh builds and runs that target (a request through the published port, the
# health check, `docker stop`).
#
# The image has no shell and no /etc: Docker provides /etc/resolv.conf and /etc/hosts at run time,
# which musl's resolver reads, so `flink_market_data_endpoint = "tcp://flink-jobmanager:5557"`
# resolves. The relay runs as PID 1; it installs its own SIGTERM/SIGINT handlers (answers pending
# requests UNAVAILABLE, exits 0 within 5 s), so `docker stop` shuts it down cleanly without an init.
# With no file at CONFIG_PATH the defaults run (and a warning says so).
#
# The stages that need no base image come first: the classic builder (DOCKER_BUILDKIT=0, the default
# of Docker 20.10) runs every stage up to the target, so `--target runtime-local` must not have
# `build` before it. For the same reason the classic builder runs `runtime-local` on the way to the
# default target, which fails unless the host binaries exist: build the released image with BuildKit
# (the default since Docker 23; DOCKER_BUILDKIT=1 on 20.10), which runs only the stages it needs.

ARG RUST_VERSION=1.95

# What both runtime stages share.
FROM scratch AS runtime-base
# /tmp, mode 1777 (a tar keeps the mode; git cannot, and scratch has no shell to chmod with).
ADD deploy/rootfs.tar.gz /
# 5559 clients (ROUTER), 5555 ingestor work (XPUB), 5556 ingestor responses (ROUTER),
# 5558 market data out (XPUB), 9559 the admin endpoint (HTTP: /metrics, /livez, /readyz).
# The upstream (5557) is connected to, not bound, by default.
EXPOSE 5555 5556 5558 5559 9559
ENV CONFIG_PATH=/config/config.toml
# `relay --healthcheck` GETs /readyz of the admin endpoint that CONFIG_PATH's file names (default
# 127.0.0.1:9559) and exits 0 on HTTP 200; the probe's own deadline is 3 s.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["/relay", "--healthcheck"]
# nobody: the relay needs no privileges (its ports are above 1024).
USER 65534:65534
ENTRYPOINT ["/relay"]

# The image from static binaries built on the host (see above).
FROM runtime-base AS runtime-local
COPY target/x86_64-unknown-linux-musl/release/relay /relay
COPY target/x86_64-unknown-linux-musl/release/zmq-adaptor /zmq-adaptor

FROM rust:${RUST_VERSION}-slim AS build
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# The release profile already has no debug info (the `profiling` profile keeps it); the image also
# drops the symbols.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl -p relay --bins \
    && mkdir -p /out \
    && cp target/x86_64-unknown-linux-musl/release/relay target/x86_64-unknown-linux-musl/release/zmq-adaptor /out/

# The released image (the default target: the last stage).
FROM runtime-base AS runtime
COPY --from=build /out/relay /relay
COPY --from=build /out/zmq-adaptor /zmq-adaptor
