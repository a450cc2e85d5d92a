# Shared by scripts/test-all.sh, scripts/fuzz-corpus-update.sh and scripts/fuzz-campaign.sh (sourced,
# not run): the pinned cargo-fuzz, the build flags, the target list and each target's -max_len.
# Expects the current directory to be the repository root.

# The cargo-fuzz every script uses (and test-all.sh installs): one version, so that a corpus minimised
# on a developer's machine and CI's short runs see the same build of the targets.
CARGO_FUZZ_VERSION="0.13.2"

# Release, debug assertions and overflow checks, AddressSanitizer (cargo-fuzz's default sanitizer).
# Every `cargo fuzz` call passes the same flags: other flags would rebuild every target.
fuzz_flags=(--debug-assertions)

# The target binaries as `cargo fuzz build` leaves them.
fuzz_bin_dir="fuzz/target/x86_64-unknown-linux-gnu/release"

# Installs the pinned cargo-fuzz when it is missing or another version is installed.
ensure_cargo_fuzz() {
    local have=""
    if command -v cargo-fuzz >/dev/null 2>&1; then
        have="$(cargo fuzz --version 2>/dev/null | awk '{print $2}')"
    fi
    if [[ "$have" != "$CARGO_FUZZ_VERSION" ]]; then
        echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION (found: ${have:-none})"
        cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --force
    fi
    if ! rustup toolchain list | grep -q '^nightly'; then
        echo "fuzz: installing the nightly toolchain"
        rustup toolchain install nightly --profile minimal
    fi
}

# Every target in fuzz/fuzz_targets/, sorted.
fuzz_targets() {
    local f
    for f in fuzz/fuzz_targets/*.rs; do
        basename "$f" .rs
    done
}

# Longest input libFuzzer makes for a target: enough for every legal structure the target parses
# (a greeting is 64 octets, a CURVE/PLAIN handshake a few kB), small enough to keep exec/s up and the
# committed corpora small.
max_len_for() {
    case "$1" in
        greeting) echo 128 ;;
        command | metadata) echo 8192 ;;
        config_toml) echo 4096 ;;
        z85) echo 1024 ;;
        zap_reply) echo 4096 ;;
        # A handshake is under 1 kB; the seeds' largest inputs (about 21 kB) carry a 20,000-octet
        # message, past the 16 KiB above which a MESSAGE is read into a buffer of its own. 32 KiB
        # keeps that path and every seed whole and halves what the largest corpus inputs can grow to.
        curve_client | curve_server | plain) echo 32768 ;;
        # A state-table message may be up to 16 MiB, but every structure (counts, lengths, field
        # counts, hundreds of operations) fits in far less; the seeds are under 4 KB.
        statetable_wire) echo 65536 ;;
        *) echo 65536 ;;
    esac
}

# "<files> <bytes>" of a directory's regular files (0 0 when it does not exist).
corpus_size() {
    if [[ -d "$1" ]]; then
        find "$1" -maxdepth 1 -type f -printf '%s\n' | awk '{n++; b+=$1} END {printf "%d %d\n", n, b}'
    else
        echo "0 0"
    fi
}
