#!/usr/bin/env bash
# Tests the container image for real: builds the Dockerfile's `runtime-local` target from the static
# musl binaries (scripts/check-static.sh builds them; built here if missing), runs it with a mounted
# config and ports published on free 127.0.0.1 ports, answers a request through the published client
# port (examples/relay/ingestor.py and history_client.py, pyzmq), waits until Docker's health status
# (the image's HEALTHCHECK: `relay --healthcheck`) is `healthy`, and checks that `docker stop` ends the
# relay with exit status 0 within 5 s. Then validates deploy/docker-compose.yml with `docker compose
# config` (or docker-compose v1). Base images are never pulled: the image is `FROM scratch`.
#
# Installs when missing (as root, with apt-get): docker.io, docker-compose; the rust target
# x86_64-unknown-linux-musl (rustup). Uses the daemon that DOCKER_HOST (or the default socket) names
# if one answers; otherwise starts its own dockerd (temporary --data-root, log in the temp dir) and
# stops it at the end. Whatever cannot run here is reported as "SKIPPED: <reason>" (exit 0): no
# daemon can start, no musl target. A failed check exits 1. Removes the container, image and temp
# files it made.
#
# Until the relay has the admin endpoint (`admin_address` in config.example.toml), the health check
# cannot turn healthy: that step is then reported as SKIPPED and the rest still runs.
#
# Environment: ZMTP_PYTHON (python with pyzmq; default scripts/ensure-pyzmq.sh), KEEP_DOCKER_TMP=1
# keeps the temp dir (daemon log, relay config) for a look afterwards.
set -euo pipefail
exec </dev/null

TARGET=x86_64-unknown-linux-musl
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"
started=$SECONDS

say() { echo "check-docker: $*"; }
fail() {
    say "FAIL: $*"
    exit 1
}
skip() {
    say "SKIPPED: $*"
    exit 0
}
is_root() { [[ "$(id -u)" == 0 ]]; }
# `apt-get update` once: not at all when scripts/test-all.sh ran it already (ZMTP_APT_UPDATED=1), and
# not again for a second package.
apt_install() { # PACKAGE...: installs with apt-get when root; 1 when it cannot
    is_root && command -v apt-get >/dev/null 2>&1 || return 1
    say "installing $* (apt-get)"
    {
        if [[ "${ZMTP_APT_UPDATED:-}" != 1 ]]; then
            apt-get update -qq && ZMTP_APT_UPDATED=1
        fi && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
    } >"$work/apt.log" 2>&1 || {
        tail -n 5 "$work/apt.log"
        return 1
    }
}

work=$(mktemp -d /tmp/check-docker.XXXXXX)
chmod 755 "$work" # the container's user (nobody) reads the mounted config
daemon_pid=""
container=""
image="zmtp-relay-check:$$"
image_built=0
ingestor_pid=""
cleanup() {
    set +e
    [[ -n "$ingestor_pid" ]] && kill "$ingestor_pid" 2>/dev/null && wait "$ingestor_pid" 2>/dev/null
    [[ -n "$container" ]] && docker rm -f "$container" >/dev/null 2>&1
    [[ $image_built == 1 ]] && docker rmi -f "$image" >/dev/null 2>&1
    if [[ -n "$daemon_pid" ]]; then
        kill -TERM "$daemon_pid" 2>/dev/null
        for _ in $(seq 100); do
            kill -0 "$daemon_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
        # What the daemon may have left mounted under its data root.
        grep -o " $work/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    fi
    if [[ "${KEEP_DOCKER_TMP:-0}" == 1 ]]; then
        say "temp files kept in $work"
    else
        rm -rf "$work" 2>/dev/null
    fi
}
trap cleanup EXIT

# ---- the static binaries ---------------------------------------------------------------------------
if ! command -v rustup >/dev/null 2>&1; then
    skip "no rustup to build the $TARGET binaries"
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    say "installing the rust target $TARGET"
    rustup target add "$TARGET" >"$work/rustup.log" 2>&1 || skip "rust target $TARGET cannot be installed: $(tail -n 1 "$work/rustup.log")"
fi
# A no-op when check-static.sh built the same binaries just before.
cargo build --release --target "$TARGET" -p relay >&2
target_dir="$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | head -n 1 | cut -d'"' -f4)"
bins="${target_dir:-$repo_root/target}/$TARGET/release"
if [[ "$bins" != "$repo_root/target/$TARGET/release" ]]; then
    # The Dockerfile copies from target/ in the build context; CARGO_TARGET_DIR put them elsewhere.
    mkdir -p "target/$TARGET/release"
    cp "$bins/relay" "$bins/zmq-adaptor" "target/$TARGET/release/"
fi

# ---- the docker client and a daemon ----------------------------------------------------------------
if ! command -v docker >/dev/null 2>&1; then
    apt_install docker.io || true
fi
command -v docker >/dev/null 2>&1 || skip "no docker client, and docker.io cannot be installed"
if timeout 20 docker info >/dev/null 2>&1; then
    say "using the running docker daemon (${DOCKER_HOST:-default socket})"
else
    command -v dockerd >/dev/null 2>&1 || apt_install docker.io || true
    command -v dockerd >/dev/null 2>&1 || skip "no docker daemon answers and dockerd cannot be installed"
    is_root || skip "no docker daemon answers and dockerd needs root"
    say "starting dockerd (data root $work/root, log $work/dockerd.log)"
    export DOCKER_HOST="unix://$work/docker.sock"
    dockerd --data-root "$work/root" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
        -H "$DOCKER_HOST" >"$work/dockerd.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 120); do
        timeout 5 docker info >/dev/null 2>&1 && break
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.25
    done
    if ! timeout 5 docker info >/dev/null 2>&1; then
        reason=$(grep -iE 'level=(fatal|error)|failed' "$work/dockerd.log" | tail -n 1 | cut -c1-300)
        skip "dockerd cannot start here: ${reason:-no answer within 30 s}"
    fi
fi
say "docker daemon $(docker version -f '{{.Server.Version}}' 2>/dev/null) ready at t+$((SECONDS - started))s"

# ---- the image ---------------------------------------------------------------------------------------
# The classic builder: BuildKit would fetch the `# syntax` frontend image, which cannot be pulled.
if ! DOCKER_BUILDKIT=0 docker build --target runtime-local -t "$image" . >"$work/build.log" 2>&1; then
    tail -n 20 "$work/build.log"
    fail "docker build --target runtime-local failed"
fi
image_built=1
say "image built at t+$((SECONDS - started))s: $(docker image inspect -f '{{.Size}}' "$image") bytes"
healthcheck=$(docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$image")
[[ "$healthcheck" == '["CMD","/relay","--healthcheck"]' ]] || fail "unexpected HEALTHCHECK: $healthcheck"

# ---- run it ------------------------------------------------------------------------------------------
PY="${ZMTP_PYTHON:-$(bash "$script_dir/ensure-pyzmq.sh")}"
read -r client_port work_port response_port admin_port < <("$PY" - <<'EOF'
import socket
held = [socket.socket() for _ in range(4)]
for s in held:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in held])
EOF
)
has_admin=0
grep -q '^admin_address' config.example.toml && has_admin=1
mkdir -m 755 "$work/config"
if [[ $has_admin == 1 ]]; then
    # The compose file's relay configuration, so that it is checked too: default ports inside the
    # container, admin endpoint on 0.0.0.0:9559, upstream_optional (no market-data source here).
    cp deploy/relay/config.toml "$work/config/config.toml"
else
    # No market-data source here: the relay keeps dialling it and serves requests meanwhile.
    printf '%s\n' 'bind_address = "tcp://*"' 'flink_market_data_endpoint = "tcp://127.0.0.1:5557"' \
        >"$work/config/config.toml"
fi
chmod 644 "$work/config/config.toml"
container="zmtp-relay-check-$$"
docker run -d --name "$container" --health-interval=1s --health-start-period=30s \
    -v "$work/config:/config:ro" -e RUST_LOG=relay=info \
    -p "127.0.0.1:$client_port:5559" -p "127.0.0.1:$work_port:5555" \
    -p "127.0.0.1:$response_port:5556" -p "127.0.0.1:$admin_port:9559" \
    "$image" >/dev/null || fail "docker run failed"

"$PY" examples/relay/ingestor.py --work "tcp://127.0.0.1:$work_port" --responses "tcp://127.0.0.1:$response_port" \
    --count 1 BINANCE: >"$work/ingestor.log" 2>&1 &
ingestor_pid=$!
if ! timeout 60 "$PY" examples/relay/history_client.py --endpoint "tcp://127.0.0.1:$client_port" --timeout 20 \
    --wait 30 BINANCE:BTC/USDT >"$work/client.log" 2>&1; then
    cat "$work/client.log" "$work/ingestor.log"
    docker logs "$container" 2>&1 | tail -n 20
    fail "no OK reply through the published client port"
fi
wait "$ingestor_pid" 2>/dev/null || true
ingestor_pid=""
say "request answered through the published port at t+$((SECONDS - started))s: $(head -n 1 "$work/client.log")"

if [[ $has_admin == 1 ]]; then
    status=""
    for _ in $(seq 120); do
        status=$(docker inspect -f '{{.State.Health.Status}}' "$container")
        [[ "$status" == healthy ]] && break
        sleep 0.5
    done
    if [[ "$status" != healthy ]]; then
        docker inspect -f '{{json .State.Health}}' "$container"
        docker logs "$container" 2>&1 | tail -n 20
        fail "health status is '$status' after 60 s"
    fi
    say "health status healthy at t+$((SECONDS - started))s ($(docker inspect -f '{{(index .State.Health.Log 0).Output}}' "$container" | tr -d '\n'))"
    curl_out=$(timeout 10 "$PY" -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$admin_port/readyz', timeout=5).status)" 2>&1 || true)
    [[ "$curl_out" == 200 ]] || fail "/readyz through the published admin port: $curl_out"
else
    say "SKIPPED: health status: this relay has no admin endpoint yet (no admin_address in config.example.toml)"
fi

# ---- docker stop -------------------------------------------------------------------------------------
t0=$(date +%s%N)
docker stop -t 10 "$container" >/dev/null || fail "docker stop failed"
t1=$(date +%s%N)
stop_ms=$(((t1 - t0) / 1000000))
code=$(docker inspect -f '{{.State.ExitCode}}' "$container")
[[ "$code" == 0 ]] || {
    docker logs "$container" 2>&1 | tail -n 20
    fail "the relay exited $code after docker stop"
}
((stop_ms < 5000)) || fail "docker stop took $stop_ms ms (limit 5000)"
say "docker stop: exit status 0 in $stop_ms ms"

# ---- the compose file --------------------------------------------------------------------------------
compose=()
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose; then
    command -v docker-compose >/dev/null 2>&1 && compose=(docker-compose)
fi
if ((${#compose[@]} == 0)); then
    say "SKIPPED: compose check: neither 'docker compose' nor docker-compose is available"
elif ! "${compose[@]}" -f deploy/docker-compose.yml config -q >"$work/compose.log" 2>&1; then
    cat "$work/compose.log"
    fail "${compose[*]} -f deploy/docker-compose.yml config: invalid"
else
    for f in deploy/prometheus/prometheus.yml deploy/relay/config.toml \
        deploy/grafana/provisioning/datasources/prometheus.yml deploy/grafana/provisioning/dashboards/relay.yml; do
        [[ -f "$f" ]] || fail "deploy/docker-compose.yml mounts $f, which is missing"
    done
    say "deploy/docker-compose.yml is valid (${compose[*]} config)"
fi
# Prometheus's own check of the scrape config, where promtool is installed (Debian's prometheus,
# which scripts/test-all.sh installs for the relay's scrape test).
if command -v promtool >/dev/null 2>&1; then
    promtool check config deploy/prometheus/prometheus.yml >"$work/promtool.log" 2>&1 || {
        cat "$work/promtool.log"
        fail "promtool check config deploy/prometheus/prometheus.yml"
    }
    say "deploy/prometheus/prometheus.yml is valid (promtool)"
else
    say "SKIPPED: promtool check of deploy/prometheus/prometheus.yml: no promtool (Debian: prometheus)"
fi

say "ok in $((SECONDS - started))s"
