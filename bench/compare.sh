#!/usr/bin/env bash
# Two gateway builds, compared on a noisy machine: runs `bench/run.sh` with each binary in turn,
# ROUNDS times (A, B, A, B, ...), and prints every round's ratio to nginx and CPU per request
# for each gateway row, then the median of each build. One run of `bench/run.sh` swings by
# ±30% on a row on a shared VM; alternating the builds and taking medians is what can tell a
# ~5–10% change from the noise (the instruction counts of `bench/instructions.sh` remain the
# figure that does not depend on the machine).
#
#   bench/compare.sh target/release/authgate /tmp/authgate-main        # 3 rounds, BENCH_QUICK=1
#   ROUNDS=5 BENCH_QUICK=0 bench/compare.sh new old                   # full runs (~8 min each)
#
# Env: ROUNDS (3); BENCH_QUICK (1: only the throughput rows, ~1.5 min a run; BENCH_WARM=1 logs the
# 1000 users in first, as full runs do: ~3 min a run); everything else is
# passed to bench/run.sh (BENCH_SECONDS, BENCH_CONNECTIONS, ...).
set -euo pipefail

(($# == 2)) || {
    echo "usage: bench/compare.sh GATEWAY_BIN_A GATEWAY_BIN_B" >&2
    exit 2
}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
export BENCH_QUICK=${BENCH_QUICK:-1}
BINS=("$1" "$2")
for bin in "${BINS[@]}"; do
    [[ -x $bin ]] || {
        echo "compare.sh: $bin is not an executable" >&2
        exit 2
    }
done
# Each binary is copied: a rebuild during the comparison must not change what is measured.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gateway-compare.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp "${BINS[0]}" "$WORK/a"
cp "${BINS[1]}" "$WORK/b"

SIDES=(a b)
for round in $(seq "$ROUNDS"); do
    for i in 0 1; do
        side=${SIDES[$i]}
        echo "round $round/$ROUNDS: $side (${BINS[$i]})" >&2
        out=$WORK/$side.$round.txt
        if ! GATEWAY_BIN=$WORK/$side "$ROOT/bench/run.sh" >"$out" 2>&1; then
            tail -n 20 "$out" >&2
            echo "compare.sh: bench/run.sh failed (output above)" >&2
            exit 1
        fi
    done
done

python3 - "$WORK" "$ROUNDS" "${BINS[0]}" "${BINS[1]}" <<'PY'
import re, statistics, sys

work, rounds, name_a, name_b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
# A table line: name, requests/s, p50, p99, errors, CPU us/req, ratio ("0.87x" or "n/a").
line = re.compile(r"^(gateway .+?|nginx proxy_pass.*?)\s+(\d+)\s+\S+ms\s+\S+ms\s+\d+\s+(\S+)\s+(\S+)$")

def read(side, r):
    rows = {}
    with open(f"{work}/{side}.{r}.txt", encoding="utf-8") as f:
        for text in f:
            m = line.match(text.rstrip())
            if m and m.group(4).endswith("x"):
                cpu = None if m.group(3) == "-" else float(m.group(3))
                rows[m.group(1)] = (float(m.group(4)[:-1]), cpu)
    return rows

runs = {side: [read(side, r) for r in range(1, rounds + 1)] for side in "ab"}
names = [n for n in runs["a"][0] if n.startswith("gateway")]
print(f"A = {name_a}\nB = {name_b}\n{rounds} rounds, A and B alternated; ratio to the nginx proxy_pass of the same run")
print(f"{'target':<32} {'A ratios':<24} {'B ratios':<24} {'median A':>9} {'median B':>9} {'B/A':>6}   CPU us/req median A / B")
for n in names:
    ratios = {s: [run[n][0] for run in runs[s] if n in run] for s in "ab"}
    cpus = {s: [run[n][1] for run in runs[s] if n in run and run[n][1] is not None] for s in "ab"}
    if not ratios["a"] or not ratios["b"]:
        continue
    ma, mb = statistics.median(ratios["a"]), statistics.median(ratios["b"])
    cpu = " / ".join(f"{statistics.median(cpus[s]):.1f}" if cpus[s] else "-" for s in "ab")
    fmt = lambda v: ", ".join(f"{x:.2f}" for x in v)
    print(f"{n:<32} {fmt(ratios['a']):<24} {fmt(ratios['b']):<24} {ma:>8.2f}x {mb:>8.2f}x {mb / ma:>6.2f}   {cpu}")
PY
