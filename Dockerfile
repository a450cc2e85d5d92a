# syntax=docker/dockerfile:1
#
# The relay as a static binary in an empty image.
#
#   docker build -t relay .
#   docker run --rm -p 5555:5555 -p 5556:5556 -p 5558:5558 -p 5559:5559 \
#       -v "$PWD/config:/config:ro" relay
#
# Stage 1 builds `relay` and `zmq-adaptor` for x86_64-unknown-linux-musl: the code is pure Rust
# (no C dependencies, no build scripts compiling C), so the musl target from rustup links it fully
# statically with its self-contained linker and no musl-gcc is needed. Stage 2 is `scratch`
# holding only the two binaries.
#
# The image has no shell and no /etc: Docker provides /etc/resolv.conf and /etc/hosts at run time,
# which musl's resolver reads, so `flink_market_data_endpoint = "tcp://flink-jobmanager:5557"`
# resolves. The relay runs as PID 1; it installs its own SIGTERM/SIGINT handlers (answers pending
# requests UNAVAILABLE, exits 0 within 5 s), so `docker stop` shuts it down cleanly without an init.
# With no file at CONFIG_PATH the defaults run (and a warning says so).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim AS build
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# No debug info in the image (the workspace's release profile keeps some for profiling).
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl -p relay --bins \
    && mkdir -p /out \
    && cp target/x86_64-unknown-linux-musl/release/relay target/x86_64-unknown-linux-musl/release/zmq-adaptor /out/

FROM scratch
COPY --from=build /out/relay /relay
COPY --from=build /out/zmq-adaptor /zmq-adaptor
# 5559 clients (ROUTER), 5555 ingestor work (XPUB), 5556 ingestor responses (ROUTER),
# 5558 market data out (XPUB). The upstream (5557) is connected to, not bound, by default.
EXPOSE 5555 5556 5558 5559
ENV CONFIG_PATH=/config/config.toml
# nobody: the relay needs no privileges (its ports are above 1024).
USER 65534:65534
ENTRYPOINT ["/relay"]
