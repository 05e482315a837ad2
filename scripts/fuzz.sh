#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ and runs each for a while (default 20 s each).
#   scripts/fuzz.sh [seconds] [target...]
# Works on the stable toolchain: the sanitizer-coverage instrumentation libFuzzer needs is
# requested with plain -C flags (the same cargo-fuzz passes with `--sanitizer none`), so
# neither nightly nor cargo-fuzz is required. With cargo-fuzz installed, `cargo fuzz run <t>`
# from the repository root works too (under RUSTC_BOOTSTRAP=1 for its -Z flags).
# Crashes are written to fuzz/artifacts/<target>/ and make the script exit non-zero.
set -euo pipefail
secs="${1:-20}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    # Every [[bin]] of fuzz/Cargo.toml, so a new target cannot be left out.
    mapfile -t targets < <(sed -n 's/^name = "\([a-z0-9_]*\)"$/\1/p' Cargo.toml | grep -vx gateway-fuzz)
fi
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz targets found in fuzz/Cargo.toml" >&2; exit 1; }
export CARGO_INCREMENTAL=0
# Its own target directory whatever the caller's CARGO_TARGET_DIR: the instrumented build must
# not thrash the workspace's, and the binaries are looked up below.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$root/fuzz/target}"
export RUSTFLAGS="${RUSTFLAGS:-} -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# The host triple keeps RUSTFLAGS away from build scripts and proc macros.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --target "$host" --bins
status=0
for t in "${targets[@]}"; do
    corpus="corpus/$t"
    work="$(mktemp -d)"
    mkdir -p "artifacts/$t"
    echo "== $t for ${secs}s (seeds: $(ls "$corpus" 2>/dev/null | wc -l))"
    if ! "$CARGO_TARGET_DIR/$host/release/$t" -max_total_time="$secs" -max_len=8192 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
        "$work" "$corpus" 2>"$work.log"; then
        echo "!! $t FAILED; the input is in fuzz/artifacts/$t/:"
        grep -m1 -A2 "panicked" "$work.log" || tail -n 30 "$work.log"
        status=1
    fi
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$work.log" | sed "s/^/   /" || true
    grep -E "cov: [0-9]+" "$work.log" | tail -n 1 | sed "s/^/   /" || true
    rm -rf "$work" "$work.log"
done
exit $status
