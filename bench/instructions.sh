#!/usr/bin/env bash
# User-space instructions per proxied request, gateway vs nginx proxy_pass, counted by
# valgrind's callgrind. Instruction counts do not depend on what else the machine is doing
# (unlike wrk's requests/s on a shared VM), so this is the figure to compare two builds with.
# It does not count kernel time (the loopback syscalls both proxies pay alike).
#
#   bench/instructions.sh                  # builds the `profiling` profile unless GATEWAY_BIN is set
#   GATEWAY_BIN=target/profiling/authgate REQUESTS=20000 bench/instructions.sh
#   BENCH_PINGORA=1 bench/instructions.sh  # also bench/pingora (a minimal pingora-proxy, no auth;
#                                          # `profiling` build, needs cmake, unless PINGORA_BIN is set)
#
# The `profiling` profile is `release` with line-level debug info (the shipped `release` binary
# has none), so callgrind can name the functions that allocate.
#
# Each server runs under callgrind with instrumentation off; after a warm-up, it is switched
# on (callgrind_control -i on), `ab -k` sends REQUESTS keep-alive requests over CONCURRENCY
# connections, and the dump's total Ir divided by REQUESTS is printed, with the heap allocations
# per request (calls into malloc/calloc/realloc and Rust's allocator entry points; nginx mostly
# allocates from per-request pools, so its figure counts only the pool pages). Set KEEP=1 to keep the
# callgrind files (bench/results/callgrind.*) for callgrind_annotate.
set -euo pipefail

REQUESTS=${REQUESTS:-20000}
LOG_LEVEL=${BENCH_LOG_LEVEL:-warn}   # the gateway's log.level: `info` turns the access log on
CONCURRENCY=${CONCURRENCY:-10}
WARMUP=${WARMUP:-2000}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
CLIENT=(python3 "$BENCH/client.py")
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '%s\n' "$*"; }
die() { say "instructions.sh: $*" >&2; exit 1; }

for tool in valgrind callgrind_control ab nginx htpasswd python3; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install valgrind apache2-utils nginx)"
done

gateway_bin=${GATEWAY_BIN:-}
if [[ -z $gateway_bin ]]; then
    cargo build --profile profiling -p gateway --bin authgate >"$WORK/build.log" 2>&1 ||
        { tail -n 20 "$WORK/build.log"; die "profiling build failed"; }
    gateway_bin=${CARGO_TARGET_DIR:-$ROOT/target}/profiling/authgate
fi

free_port() { "${CLIENT[@]}" free-port; }

# nginx alone in one process, so callgrind sees the process that serves.
export NGINX_MASTER=off NGINX_START_SECONDS=60
# shellcheck source=bench/nginx.sh
source "$BENCH/nginx.sh"

# Runs `ab` against url under callgrind pid's collection; prints Ir per request.
count() { # label pid callgrind-out url [ab args...]
    local label=$1 pid=$2 out=$3 url=$4
    shift 4
    ab -q -k -c "$CONCURRENCY" -n "$WARMUP" "$@" "$url" >/dev/null 2>&1 || true
    callgrind_control -i on "$pid" >/dev/null
    local ab_out
    ab_out=$(ab -k -c "$CONCURRENCY" -n "$REQUESTS" "$@" "$url" 2>&1) || die "ab failed: $ab_out"
    callgrind_control -d "$pid" >/dev/null
    callgrind_control -i off "$pid" >/dev/null
    local failed non2xx
    failed=$(sed -n 's/^Failed requests: *//p' <<<"$ab_out")
    non2xx=$(sed -n 's/^Non-2xx responses: *//p' <<<"$ab_out")
    [[ ${failed:-0} == 0 && -z $non2xx ]] || die "$label: ab saw failed=$failed non-2xx=${non2xx:-0}"
    # The dump is the newest callgrind file of that pid with a part number.
    local dump
    for _ in $(seq 50); do
        dump=$(ls -t "$out".* 2>/dev/null | head -n 1 || true)
        [[ -n $dump ]] && grep -q '^totals:' "$dump" 2>/dev/null && break
        sleep 0.2
    done
    local total
    total=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$dump")
    [[ -n $total ]] || die "$label: no totals in $dump"
    local allocs
    allocs=$(python3 "$BENCH/alloc_calls.py" "$dump" "$REQUESTS") || die "$label: cannot count allocations in $dump"
    printf '%-26s %12d Ir/request %8s heap allocations/request\n' "$label" $((total / REQUESTS)) "$allocs"
    if [[ ${KEEP:-0} == 1 ]]; then
        mkdir -p "$BENCH/results"
        cp "$dump" "$BENCH/results/callgrind.${label// /-}"
    fi
}

CG=(valgrind --tool=callgrind --instr-atstart=no)

UPSTREAM_PORT=$(free_port)
start_nginx upstream "$UPSTREAM_PORT" 'default_type text/plain; return 200 "ok";' ""

PROXY_PORT=$(free_port)
start_nginx proxy "$PROXY_PORT" \
    'proxy_pass http://bench_upstream; proxy_http_version 1.1; proxy_set_header Connection "";' \
    "upstream bench_upstream { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }" \
    "${CG[@]}" --callgrind-out-file="$WORK/cg.nginx"
NGINX_PID=${PIDS[-1]}

GATEWAY_PORT=$(free_port)
GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT
mkdir -p "$WORK/gateway/data"
htpasswd -nbB -C 4 bench bench-password >"$WORK/gateway/users.htpasswd"
cat >"$WORK/gateway/gateway.yaml" <<EOF
server:
  listen: "127.0.0.1:$GATEWAY_PORT"
  public_url: "$GATEWAY_URL"
upstream:
  url: "http://127.0.0.1:$UPSTREAM_PORT"
session:
  store: memory
  secret: "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
data_dir: "$WORK/gateway/data"
log:
  level: ${LOG_LEVEL}
chain:
  - name: users
    type: htpasswd
    options:
      path: "$WORK/gateway/users.htpasswd"
routes:
  - match: { path: /public/ }
    access: public
  - match: { path: / }
    access: authenticated
EOF
# It holds a literal session secret: `authgate run` refuses it unless only its owner can read it.
chmod 600 "$WORK/gateway/gateway.yaml"
"${CG[@]}" --callgrind-out-file="$WORK/cg.gateway" "$gateway_bin" run --config "$WORK/gateway/gateway.yaml" \
    >"$WORK/gateway/out.log" 2>&1 &
PIDS+=("$!")
GATEWAY_PID=$!
"${CLIENT[@]}" wait-http "$GATEWAY_URL/public/" 120 || die "gateway did not start: $(tail -n 5 "$WORK/gateway/out.log")"
cookie=$("${CLIENT[@]}" login "$GATEWAY_URL" bench bench-password gw_session) || die "login failed"

say "user-space instructions per request (callgrind; $REQUESTS requests, $CONCURRENCY keep-alive connections, after $WARMUP)"
count "nginx proxy_pass" "$NGINX_PID" "$WORK/cg.nginx" "http://127.0.0.1:$PROXY_PORT/"
count "gateway public" "$GATEWAY_PID" "$WORK/cg.gateway" "$GATEWAY_URL/public/"
count "gateway session cookie" "$GATEWAY_PID" "$WORK/cg.gateway" "$GATEWAY_URL/private/" -C "gw_session=$cookie"
# HTTP Basic with the credential cache warm (the warm-up's first request pays the one bcrypt check).
count "gateway basic (warm)" "$GATEWAY_PID" "$WORK/cg.gateway" "$GATEWAY_URL/private/" -A bench:bench-password

if [[ ${BENCH_PINGORA:-0} == 1 ]]; then
    pingora_bin=${PINGORA_BIN:-}
    if [[ -z $pingora_bin ]]; then
        cargo build --profile profiling --manifest-path "$BENCH/pingora/Cargo.toml" >"$WORK/pingora-build.log" 2>&1 ||
            { tail -n 20 "$WORK/pingora-build.log"; die "bench/pingora profiling build failed"; }
        pingora_bin=$BENCH/pingora/target/profiling/pingora-bench-proxy
    fi
    PINGORA_PORT=$(free_port)
    "${CG[@]}" --callgrind-out-file="$WORK/cg.pingora" "$pingora_bin" "127.0.0.1:$PINGORA_PORT" \
        "127.0.0.1:$UPSTREAM_PORT" >"$WORK/pingora.log" 2>&1 &
    PIDS+=("$!")
    PINGORA_PID=$!
    "${CLIENT[@]}" wait-http "http://127.0.0.1:$PINGORA_PORT/" 120 || die "pingora did not start: $(tail -n 5 "$WORK/pingora.log")"
    count "pingora proxy (no auth)" "$PINGORA_PID" "$WORK/cg.pingora" "http://127.0.0.1:$PINGORA_PORT/"
fi
