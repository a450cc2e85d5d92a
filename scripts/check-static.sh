#!/usr/bin/env bash
# Checks that the relay's binaries (`relay`, `zmq-adaptor`) build as fully static executables for
# x86_64-unknown-linux-musl, as the Dockerfile's `FROM scratch` image needs.
#
# Installs the rust target x86_64-unknown-linux-musl when missing (`rustup target add`); if that
# fails, prints that it skipped and exits 0. Otherwise builds
# `cargo build --release --target x86_64-unknown-linux-musl -p relay` and fails (exit 1) unless
# each binary is a statically linked ELF with no program interpreter and no dynamic section
# (checked with `file` and `ldd` where present, and always by reading the ELF program headers,
# so the check works without either tool). The code has no C dependencies (on musl it allocates
# with dlmalloc, pure Rust), so no musl-gcc is needed. Honours CARGO_TARGET_DIR. Build output goes
# to stderr.
set -euo pipefail

TARGET=x86_64-unknown-linux-musl
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    echo "check-static: installing the rust target $TARGET (rustup target add)"
    rustup target add "$TARGET" </dev/null >&2 || true
fi
if ! command -v rustup >/dev/null 2>&1 || ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    echo "check-static: skipped: rust target $TARGET is not installed and cannot be (rustup target add $TARGET)"
    exit 0
fi

cargo build --release --target "$TARGET" -p relay </dev/null >&2

target_dir="$(cargo metadata --format-version 1 --no-deps </dev/null |
    grep -o '"target_directory":"[^"]*"' | head -n 1 | cut -d'"' -f4)"
dir="${target_dir:-$repo_root/target}/$TARGET/release"

# elf_is_static FILE: exit 0 if FILE is a 64-bit little-endian ELF with neither a PT_INTERP (3)
# nor a PT_DYNAMIC (2) program header. A static-pie has PT_DYNAMIC (for its self-relocation) and
# no PT_INTERP; it is accepted when `ldd`/`file` also call it static.
elf_headers() {
    od -An -v -t u1 -N 64 "$1" | tr -s ' \n' ' '
}
elf_phdr_types() {
    # e_phoff (8 bytes at 32), e_phentsize (2 at 54), e_phnum (2 at 56); p_type is the first u32.
    local f=$1
    local h
    read -r -a h <<<"$(elf_headers "$f")"
    if [[ ${h[0]:-} != 127 || ${h[1]:-} != 69 || ${h[2]:-} != 76 || ${h[3]:-} != 70 ]]; then
        echo "not-elf"
        return
    fi
    local phoff=0 i
    for i in 7 6 5 4 3 2 1 0; do phoff=$((phoff * 256 + h[32 + i])); done
    local phentsize=$((h[54] + 256 * h[55])) phnum=$((h[56] + 256 * h[57]))
    for ((i = 0; i < phnum; i++)); do
        local t
        t=$(od -An -v -t u4 -j $((phoff + i * phentsize)) -N 4 "$f" | tr -d ' ')
        echo "$t"
    done
}

status=0
for bin in relay zmq-adaptor; do
    path="$dir/$bin"
    if [[ ! -x "$path" ]]; then
        echo "check-static: FAIL: $path was not built"
        status=1
        continue
    fi
    types=$(elf_phdr_types "$path")
    has_interp=0
    has_dynamic=0
    grep -qx 3 <<<"$types" && has_interp=1
    grep -qx 2 <<<"$types" && has_dynamic=1
    file_says=""
    if command -v file >/dev/null 2>&1; then
        file_says=$(file -b "$path")
    fi
    ldd_says=""
    if command -v ldd >/dev/null 2>&1; then
        ldd_says=$(ldd "$path" 2>&1 || true)
    fi
    ok=1
    if [[ $types == not-elf ]]; then
        ok=0
    elif [[ $has_interp == 1 ]]; then
        ok=0 # a program interpreter (ld.so) means dynamic linking
    elif [[ $has_dynamic == 1 ]]; then
        # static-pie: accept only if a tool confirms it is static
        if ! grep -qi 'static' <<<"$file_says$ldd_says"; then
            ok=0
        fi
    fi
    if [[ -n "$file_says" ]] && grep -qi 'dynamically linked' <<<"$file_says"; then
        ok=0
    fi
    if [[ -n "$ldd_says" ]] && grep -q '=>' <<<"$ldd_says"; then
        ok=0 # ldd lists shared libraries
    fi
    if [[ $ok == 1 ]]; then
        echo "check-static: ok: $bin is static (${file_says:-ELF without PT_INTERP}${ldd_says:+; ldd: ${ldd_says//$'\n'/ }})"
    else
        echo "check-static: FAIL: $bin is not static (interp=$has_interp dynamic=$has_dynamic; file: ${file_says:-n/a}; ldd: ${ldd_says:-n/a})"
        status=1
    fi
done
exit "$status"
