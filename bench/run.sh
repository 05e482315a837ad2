#!/usr/bin/env bash
# Throughput and latency of the gateway against nginx, on this machine, in one table.
#
#   bench/run.sh                      # as root on Debian: installs wrk/nginx if missing
#   BENCH_SECONDS=20 bench/run.sh     # longer measurement per target (default 10)
#
# Targets, each measured with wrk (50 connections, 1 thread) after a warm-up:
#   upstream direct          nginx `return 200 "ok"`
#   nginx proxy_pass         a second nginx proxying to it (keep-alive pool): the reference
#   nginx proxy_pass, access log on
#                            a third nginx, the same with `access_log` on to a file (nginx's
#                            default combined format, unbuffered)
#   pingora proxy (no auth)  only with BENCH_PINGORA=1: bench/pingora, a minimal pingora-proxy
#                            (one worker thread, pinned like the gateway) that only replaces
#                            X-Remote-User: the floor of a well-kept Rust HTTP/1 proxy stack
#   gateway public           the gateway on a `public` route
#   gateway session cookie   an authenticated route, with a session cookie from one login
#   gateway session, log info
#                            the same on a second gateway with `log.level: info` (its access log
#                            on, the default), stderr to a file
#   gateway basic x1000      an authenticated route, HTTP Basic cycling over 1000 bcrypt-10 users
#                            (every user has logged in once before the first gateway row, so
#                            the run measures the credential cache, as in production; all
#                            gateway rows run after that warm-up, in the same process state)
# Servers are pinned to CPU 0 and wrk to CPU 1 (`taskset`); everything binds 127.0.0.1 only.
# For the gateway and pingora targets, `CPU us/req` is the process's user + system CPU time during the
# measured run (from /proc) divided by the requests wrk completed: steadier than requests/s on a
# machine doing other work.
#
# Then, unless BENCH_QUICK=1:
#   half saturation          the connection count at which the session path runs at ~50% of its
#                            saturated rate (wrk is closed-loop: fewer connections, less load);
#                            p99 of upstream direct, nginx and the gateway at that count, and the
#                            gateway's added p99 over upstream direct
#   1000 idle connections    VmRSS of the gateway with 1000 open keep-alive connections, each
#                            having made one authenticated request
#   login storm              the session path at half saturation, alone and while a second wrk
#                            sends Basic with a wrong password for a fresh username on every
#                            request (each one costs a bcrypt check on the hashing pool)
#
# Env: BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (3), BENCH_CONNECTIONS (50),
#      BENCH_LOG_LEVEL (warn: the gateway's `log.level`), GATEWAY_BIN (skip the cargo build and use
#      this binary), BENCH_REQUIRE_GATEWAY=1 (exit 1 when a gateway target could not run),
#      BENCH_GATEWAY_CPUS (0: the CPUs the gateway is pinned to, e.g. `0,1` to share wrk's),
#      BENCH_NGINX_WORKERS (as many as BENCH_GATEWAY_CPUS has CPUs: worker_processes of the
#      nginx proxy_pass reference, which is pinned to the gateway's CPUs),
#      BENCH_SESSION_STORE (memory: `session.store`, e.g. `cookie` or `redis://127.0.0.1:6379`),
#      BENCH_WARM (1, 0 with BENCH_QUICK=1: log the users in before the gateway rows),
#      BENCH_QUICK=1 (only the targets above the Basic one: no warm-up of the users,
#      half saturation, idle connections or storm), BENCH_PINGORA=1 (the pingora target;
#      PINGORA_BIN skips its build), BENCH_STORM_CONNECTIONS (64),
#      BENCH_PROFILE=1 (`perf record -g` of the gateway during the session run, into
#      bench/results/perf-session.data; read it with `perf report -i ...`).
set -euo pipefail

PACKAGES="wrk nginx apache2-utils"
USERS=1000
BCRYPT_COST=10

SECONDS_PER_TARGET=${BENCH_SECONDS:-10}
WARMUP_SECONDS=${BENCH_WARMUP_SECONDS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-50}
LOG_LEVEL=${BENCH_LOG_LEVEL:-warn}
SERVER_CPU=0
CLIENT_CPU=1
GATEWAY_CPUS=${BENCH_GATEWAY_CPUS:-$SERVER_CPU}
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-$(taskset -c "$GATEWAY_CPUS" nproc)}
SESSION_STORE=${BENCH_SESSION_STORE:-memory}
QUICK=${BENCH_QUICK:-0}
WARM=${BENCH_WARM:-$((QUICK == 1 ? 0 : 1))}
PINGORA=${BENCH_PINGORA:-0}
STORM_CONNECTIONS=${BENCH_STORM_CONNECTIONS:-64}
IDLE_CONNECTIONS=1000

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
CACHE=$BENCH/.cache
CLIENT=(python3 "$BENCH/client.py")
cd "$ROOT"

say() { printf '%s\n' "$*"; }
die() {
    printf 'bench: ERROR: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Cleanup: everything started here is recorded in PIDS and stopped on exit.
# ---------------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gateway-bench.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
# bench/pingora's build compiles zlib-ng (pingora-core's flate2) with cmake.
if [[ $PINGORA == 1 && -z ${PINGORA_BIN:-} ]]; then PACKAGES+=" cmake"; fi
missing=()
for pkg in $PACKAGES; do
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) == installed ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    ((EUID == 0)) || die "missing packages (${missing[*]}); run as root to install them"
    say "installing ${missing[*]}"
    own_policy=false
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        # Keep the distro nginx service from starting on :80.
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=true
    fi
    rc=0
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$WORK/apt.log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends \
            "${missing[@]}" >>"$WORK/apt.log" 2>&1 || rc=$?
    if [[ $own_policy == true ]]; then rm -f /usr/sbin/policy-rc.d; fi
    ((rc == 0)) || {
        tail -n 30 "$WORK/apt.log" >&2
        die "apt-get install ${missing[*]} failed"
    }
fi
for tool in wrk nginx htpasswd taskset python3; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
(($(nproc) >= 2)) || die "needs 2 CPUs (servers on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU)"

# ---------------------------------------------------------------------------------------------
# 1000 bcrypt users, hashed once by the real htpasswd and cached
# ---------------------------------------------------------------------------------------------
mkdir -p "$CACHE"
USERS_TXT=$CACHE/users-$USERS.txt
HTPASSWD=$CACHE/users-$USERS-bcrypt$BCRYPT_COST.htpasswd
HEADERS=$CACHE/users-$USERS-basic.txt
if [[ ! -s $USERS_TXT || ! -s $HEADERS || ! -s $HTPASSWD || $(wc -l <"$HTPASSWD") -ne $USERS ]]; then
    say "hashing $USERS users with htpasswd -B -C $BCRYPT_COST (once; cached in ${CACHE#"$ROOT"/})"
    started=$SECONDS
    for i in $(seq -w 0 $((USERS - 1))); do
        printf 'bench%s:pw-bench%s-%s\n' "$i" "$i" "$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    done >"$USERS_TXT.tmp"
    # One htpasswd per user (it hashes one password per call), on every core.
    tr ':' ' ' <"$USERS_TXT.tmp" |
        xargs -P "$(nproc)" -n 2 htpasswd -nbB -C "$BCRYPT_COST" |
        grep -v '^$' >"$HTPASSWD.tmp"
    [[ $(wc -l <"$HTPASSWD.tmp") -eq $USERS ]] || die "htpasswd produced $(wc -l <"$HTPASSWD.tmp") of $USERS entries"
    "${CLIENT[@]}" basic-headers "$USERS_TXT.tmp" >"$HEADERS.tmp"
    mv "$USERS_TXT.tmp" "$USERS_TXT"
    mv "$HTPASSWD.tmp" "$HTPASSWD"
    mv "$HEADERS.tmp" "$HEADERS"
    say "  done in $((SECONDS - started))s"
fi
FIRST_USER=$(head -n 1 "$USERS_TXT")

# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------
free_port() { "${CLIENT[@]}" free-port; }

# shellcheck source=bench/nginx.sh
source "$BENCH/nginx.sh"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
UPSTREAM_PORT=$(free_port)
start_nginx upstream "$UPSTREAM_PORT" 'default_type text/plain; return 200 "ok";' "" \
    taskset -c "$SERVER_CPU"

PROXY_PORT=$(free_port)
NGINX_WORKERS=$NGINX_WORKERS start_nginx proxy "$PROXY_PORT" \
    'proxy_pass http://bench_upstream; proxy_http_version 1.1; proxy_set_header Connection "";' \
    "upstream bench_upstream { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }" \
    taskset -c "$GATEWAY_CPUS"

# The same proxy with its access log on (nginx's default `combined` format, unbuffered: one
# write per request) to a file.
PROXY_LOG_PORT=$(free_port)
start_nginx proxy-log "$PROXY_LOG_PORT" \
    "proxy_pass http://bench_upstream; proxy_http_version 1.1; proxy_set_header Connection \"\"; access_log $WORK/proxy-log/access.log;" \
    "upstream bench_upstream { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }" \
    taskset -c "$SERVER_CPU"

# The gateway: built in release unless GATEWAY_BIN is given; any failure skips its targets.
GATEWAY_SKIPPED=""
GATEWAY_PID=""
GATEWAY_PORT=$(free_port)
GATEWAY_URL=http://127.0.0.1:$GATEWAY_PORT
gateway_bin=${GATEWAY_BIN:-}
if [[ -z $gateway_bin ]]; then
    # What users get (`release`, no debug info); `perf record` needs the `profiling` profile's symbols.
    profile=release
    [[ ${BENCH_PROFILE:-0} == 1 ]] && profile=profiling
    say "building the gateway (cargo build --profile $profile -p gateway)"
    if cargo build --profile "$profile" -p gateway --bin authgate >"$WORK/build.log" 2>&1; then
        gateway_bin=${CARGO_TARGET_DIR:-$ROOT/target}/$profile/authgate
    else
        tail -n 20 "$WORK/build.log"
        GATEWAY_SKIPPED="the release build failed (output above)"
    fi
fi
# Writes dir/gateway.yaml for a gateway on port with `log.level` level, starts it pinned to
# GATEWAY_CPUS (stderr, hence its access log, to dir/out.log) and waits until it serves; sets
# STARTED_PID. Returns 1 (with the log's tail printed) when it does not come up.
start_gateway() { # dir port log-level
    local dir=$1 port=$2 level=$3
    local url=http://127.0.0.1:$port
    mkdir -p "$dir/data"
    cat >"$dir/gateway.yaml" <<EOF
# Generated by bench/run.sh.
server:
  listen: "127.0.0.1:$port"
  public_url: "$url"
upstream:
  url: "http://127.0.0.1:$UPSTREAM_PORT"
session:
  store: "$SESSION_STORE"
  secret: "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
login:
  basic_auth: true
cache:
  credentials_ttl: 30m          # the warm-up fills it; the measured run must not see expiries
protection:
  max_failures: 1000000         # a benchmark, not an attack: never lock the bench users out
data_dir: "$dir/data"
log:
  level: $level
chain:
  - name: bench-users
    type: htpasswd
    options:
      path: "$HTPASSWD"
routes:
  - match: { path: /public/ }
    access: public
  - match: { path: / }
    access: authenticated
EOF
    # It holds a literal session secret: `authgate run` refuses it unless only its owner can read it.
    chmod 600 "$dir/gateway.yaml"
    taskset -c "$GATEWAY_CPUS" "$gateway_bin" run --config "$dir/gateway.yaml" >"$dir/out.log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    for _ in $(seq 15); do
        kill -0 "$STARTED_PID" 2>/dev/null || break
        if "${CLIENT[@]}" wait-http "$url/public/" 1; then return 0; fi
    done
    sed 's/^/  gateway: /' "$dir/out.log" | tail -n 15
    return 1
}
if [[ -z $GATEWAY_SKIPPED ]]; then
    if start_gateway "$WORK/gateway" "$GATEWAY_PORT" "$LOG_LEVEL"; then
        GATEWAY_PID=$STARTED_PID
    else
        GATEWAY_SKIPPED="'$gateway_bin run --config gateway.yaml' did not serve $GATEWAY_URL/public/ (exited, or no answer within 15s)"
    fi
fi
# A second gateway, the same but with `log.level: info` (the access log on, as by default).
GATEWAY_INFO_PID=""
GATEWAY_INFO_URL=""
if [[ -z $GATEWAY_SKIPPED ]]; then
    GATEWAY_INFO_PORT=$(free_port)
    if start_gateway "$WORK/gateway-info" "$GATEWAY_INFO_PORT" info; then
        GATEWAY_INFO_PID=$STARTED_PID
        GATEWAY_INFO_URL=http://127.0.0.1:$GATEWAY_INFO_PORT
    fi
fi

# BENCH_PINGORA=1: bench/pingora (a minimal pingora-proxy, no authentication; see its main.rs),
# one worker thread, pinned like the gateway. Built in release unless PINGORA_BIN is given.
PINGORA_PID=""
PINGORA_SKIPPED=""
if [[ $PINGORA == 1 ]]; then
    pingora_bin=${PINGORA_BIN:-}
    if [[ -z $pingora_bin ]]; then
        say "building bench/pingora (cargo build --release)"
        if cargo build --release --manifest-path "$BENCH/pingora/Cargo.toml" >"$WORK/pingora-build.log" 2>&1; then
            pingora_bin=$BENCH/pingora/target/release/pingora-bench-proxy
        else
            tail -n 20 "$WORK/pingora-build.log"
            PINGORA_SKIPPED="the bench/pingora build failed (output above)"
        fi
    fi
    if [[ -z $PINGORA_SKIPPED ]]; then
        PINGORA_PORT=$(free_port)
        taskset -c "$GATEWAY_CPUS" "$pingora_bin" "127.0.0.1:$PINGORA_PORT" "127.0.0.1:$UPSTREAM_PORT" \
            >"$WORK/pingora.log" 2>&1 &
        PINGORA_PID=$!
        PIDS+=("$PINGORA_PID")
        "${CLIENT[@]}" wait-http "http://127.0.0.1:$PINGORA_PORT/" 15 ||
            PINGORA_SKIPPED="pingora did not serve http://127.0.0.1:$PINGORA_PORT/: $(tail -n 3 "$WORK/pingora.log")"
    fi
fi

if [[ -n $GATEWAY_SKIPPED ]]; then
    say "SKIPPING the gateway targets: $GATEWAY_SKIPPED"
fi

# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------
RESULTS=()      # "name|rps|p50_us|p99_us|http_errors|socket_errors" or "name|skip|reason"
PEAK_RSS_KB=""

gateway_rss() {
    [[ -n $GATEWAY_PID && -r /proc/$GATEWAY_PID/status ]] || return 0
    # VmHWM: the peak resident set size since the process started.
    awk '/^VmHWM:/ { print $2 }' "/proc/$GATEWAY_PID/status"
}

cpu_ticks() { # pid: user + system CPU time of that process so far, in clock ticks
    [[ -n $1 && -r /proc/$1/stat ]] || return 0
    # Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

run_wrk() { # seconds url [wrk args...]; env CONN overrides the connection count
    local seconds=$1 url=$2
    shift 2
    timeout $((seconds + 30)) taskset -c "$CLIENT_CPU" \
        wrk -t1 -c"${CONN:-$CONNECTIONS}" -d"${seconds}s" --timeout 5s "$@" "$url"
}

# The last measurement's figures, for the derived measurements below.
LAST_RPS=""
LAST_P99=""

measure() { # name url [wrk args...]; env CPU_PID: the process whose CPU time is counted
    local name=$1 url=$2 out line
    local cpu_pid=${CPU_PID:-}
    if [[ -z $cpu_pid && $name == gateway* ]]; then cpu_pid=$GATEWAY_PID; fi
    shift 2
    LAST_RPS=""
    LAST_P99=""
    say "measuring: $name (${WARMUP_SECONDS}s warm-up, ${SECONDS_PER_TARGET}s run, ${CONN:-$CONNECTIONS} connections)"
    run_wrk "$WARMUP_SECONDS" "$url" "$@" >/dev/null 2>&1 || true
    local cpu_before
    cpu_before=$(cpu_ticks "$cpu_pid")
    if ! out=$(run_wrk "$SECONDS_PER_TARGET" "$url" "$@" 2>&1); then
        say "$out" | tail -n 5
        RESULTS+=("$name|skip|wrk failed")
        return
    fi
    line=$(grep '^WRK_RESULT ' <<<"$out" || true)
    if [[ -z $line ]]; then
        say "$out" | tail -n 5
        RESULTS+=("$name|skip|no WRK_RESULT line from wrk")
        return
    fi
    local requests seconds rps p50_us p99_us http_errors socket_errors
    eval "$(tr ' ' '\n' <<<"${line#WRK_RESULT }" | grep -E '^[a-z0-9_]+=[0-9.]+$')"
    local cpu_us=-
    if [[ -n $cpu_before ]]; then
        cpu_us=$(awk -v a="$cpu_before" -v b="$(cpu_ticks "$cpu_pid")" -v hz="$(getconf CLK_TCK)" -v n="$requests" \
            'BEGIN { if (n > 0 && b != "") printf "%.1f", (b - a) * 1e6 / hz / n; else print "-" }')
    fi
    RESULTS+=("$name|$rps|$p50_us|$p99_us|$http_errors|$socket_errors|$cpu_us")
    LAST_RPS=$rps
    LAST_P99=$p99_us
    local rss
    rss=$(gateway_rss)
    if [[ -n $rss ]]; then PEAK_RSS_KB=$rss; fi
}

REPORT=(-s "$BENCH/wrk/report.lua")
measure "upstream direct" "http://127.0.0.1:$UPSTREAM_PORT/" "${REPORT[@]}"
measure "nginx proxy_pass" "http://127.0.0.1:$PROXY_PORT/" "${REPORT[@]}"
measure "nginx proxy_pass, access log on" "http://127.0.0.1:$PROXY_LOG_PORT/" "${REPORT[@]}"
if [[ $PINGORA == 1 ]]; then
    if [[ -z $PINGORA_SKIPPED ]]; then
        CPU_PID=$PINGORA_PID measure "pingora proxy (no auth)" "http://127.0.0.1:$PINGORA_PORT/" "${REPORT[@]}"
    else
        RESULTS+=("pingora proxy (no auth)|skip|$PINGORA_SKIPPED")
    fi
fi

if [[ -z $GATEWAY_SKIPPED ]]; then
    # Every gateway row is measured in the state of a gateway that has served logins: each of the
    # $USERS users logs in once with HTTP Basic (filling the credential cache the Basic row
    # measures) before the first row, on both gateways. Measured on a fresh process instead, the
    # session rows ran up to a third faster or slower than the same path after the logins, depending
    # on the build, and Basic/session compared two states rather than two paths (bench/RESULTS.md,
    # "Measured in one state").
    # A warm-up that fails is said in the report (the state line, or the row skipped), never
    # passed over: a row measured on a fresh process would not compare with the others.
    WARMED=""
    INFO_WARMED=""
    if [[ $WARM == 1 ]]; then
        say "warm-up: logging each of the $USERS users in once with HTTP Basic"
        if "${CLIENT[@]}" warm-up "$GATEWAY_URL/private/" "$HEADERS" 300; then WARMED=1; fi
        if [[ -n $GATEWAY_INFO_URL ]]; then
            say "warm-up of the log.level info gateway"
            if "${CLIENT[@]}" warm-up "$GATEWAY_INFO_URL/private/" "$HEADERS" 300; then INFO_WARMED=1; fi
        fi
    fi
    measure "gateway public" "$GATEWAY_URL/public/" "${REPORT[@]}"

    SESSION_RPS=""
    cookie=""
    if cookie=$("${CLIENT[@]}" login "$GATEWAY_URL" "${FIRST_USER%%:*}" "${FIRST_USER#*:}" gw_session); then
        if [[ ${BENCH_PROFILE:-0} == 1 ]] && command -v perf >/dev/null; then
            # Samples the gateway (call graphs) during the session run; skews that run's figures.
            mkdir -p "$BENCH/results"
            perf record -F 499 --call-graph dwarf,16384 -p "$GATEWAY_PID" -o "$BENCH/results/perf-session.data" \
                -- sleep $((WARMUP_SECONDS + SECONDS_PER_TARGET)) >"$WORK/perf.log" 2>&1 &
            PIDS+=("$!")
        fi
        measure "gateway session cookie" "$GATEWAY_URL/private/" -H "Cookie: gw_session=$cookie" "${REPORT[@]}"
        SESSION_RPS=$LAST_RPS
    else
        cookie=""
        RESULTS+=("gateway session cookie|skip|no session cookie from login (see above)")
    fi

    if [[ -z $GATEWAY_INFO_PID ]]; then
        RESULTS+=("gateway session, log info|skip|the log.level info gateway did not start (see above)")
    elif [[ $WARM == 1 && -z $INFO_WARMED ]]; then
        RESULTS+=("gateway session, log info|skip|warm-up of the log.level info gateway did not get 200 for every user")
    elif info_cookie=$("${CLIENT[@]}" login "$GATEWAY_INFO_URL" "${FIRST_USER%%:*}" "${FIRST_USER#*:}" gw_session); then
        CPU_PID=$GATEWAY_INFO_PID measure "gateway session, log info" "$GATEWAY_INFO_URL/private/" \
            -H "Cookie: gw_session=$info_cookie" "${REPORT[@]}"
    else
        RESULTS+=("gateway session, log info|skip|no session cookie from login on the log.level info gateway")
    fi

    if [[ $QUICK != 1 ]]; then
        if [[ $WARM != 1 ]]; then
            RESULTS+=("gateway basic x$USERS users|skip|BENCH_WARM=0: the users were not logged in first")
        elif [[ -n $WARMED ]]; then
            BENCH_BASIC_HEADERS=$HEADERS measure "gateway basic x$USERS users" "$GATEWAY_URL/private/" \
                -s "$BENCH/wrk/basic_users.lua"
        else
            RESULTS+=("gateway basic x$USERS users|skip|warm-up did not get 200 for every user")
        fi
    fi
    PEAK_RSS_KB=$(gateway_rss)

    if [[ $QUICK != 1 && -n $cookie && -n $SESSION_RPS ]]; then
        # wrk is closed-loop (no -R): the offered load follows the connection count. Find the
        # smallest count whose session rate reaches half the saturated one.
        half=$(awk -v r="$SESSION_RPS" 'BEGIN { printf "%d", r / 2 }')
        HALF_CONN=""
        for c in 1 2 3 4 6 8 12 16 24 32; do
            rate=$(CONN=$c run_wrk 3 "$GATEWAY_URL/private/" -H "Cookie: gw_session=$cookie" "${REPORT[@]}" 2>&1 |
                sed -n 's/^WRK_RESULT .*rps=\([0-9.]*\).*/\1/p')
            say "  half-saturation probe: $c connections -> ${rate:-?} req/s (target $half)"
            HALF_CONN=$c
            if [[ -n $rate ]] && awk -v a="$rate" -v b="$half" 'BEGIN { exit !(a >= b) }'; then break; fi
        done
        CONN=$HALF_CONN measure "half-sat: upstream direct" "http://127.0.0.1:$UPSTREAM_PORT/" "${REPORT[@]}"
        HALF_DIRECT_P99=$LAST_P99
        HALF_DIRECT_P50=$(IFS='|' read -r _ _ p50 _ <<<"${RESULTS[-1]}"; echo "$p50")
        CONN=$HALF_CONN measure "half-sat: nginx proxy_pass" "http://127.0.0.1:$PROXY_PORT/" "${REPORT[@]}"
        HALF_NGINX_P99=$LAST_P99
        CONN=$HALF_CONN measure "half-sat: gateway session" "$GATEWAY_URL/private/" -H "Cookie: gw_session=$cookie" "${REPORT[@]}"
        HALF_GATEWAY_RPS=$LAST_RPS
        HALF_GATEWAY_P99=$LAST_P99
        HALF_GATEWAY_P50=$(IFS='|' read -r _ _ p50 _ <<<"${RESULTS[-1]}"; echo "$p50")

        say "opening $IDLE_CONNECTIONS idle keep-alive connections to the gateway"
        IDLE_RESULT=$("${CLIENT[@]}" hold "$GATEWAY_URL/private/" "gw_session=$cookie" "$IDLE_CONNECTIONS" "$GATEWAY_PID" 2>&1 || true)
        say "  $IDLE_RESULT"

        say "login storm: $STORM_CONNECTIONS connections of wrong Basic passwords for fresh usernames"
        storm_seconds=$((SECONDS_PER_TARGET + WARMUP_SECONDS + 4))
        CONN=$STORM_CONNECTIONS run_wrk "$storm_seconds" "$GATEWAY_URL/private/" -s "$BENCH/wrk/storm.lua" \
            >"$WORK/storm.out" 2>&1 &
        storm_pid=$!
        PIDS+=("$storm_pid")
        sleep 2
        CONN=$HALF_CONN measure "storm: gateway session" "$GATEWAY_URL/private/" -H "Cookie: gw_session=$cookie" "${REPORT[@]}"
        STORM_P99=$LAST_P99
        wait "$storm_pid" || true
        STORM_RESULT=$(grep '^STORM_RESULT' "$WORK/storm.out" || tail -n 3 "$WORK/storm.out")
        say "  $STORM_RESULT"
    fi
else
    for name in "gateway public" "gateway session cookie" "gateway session, log info" "gateway basic x$USERS users"; do
        RESULTS+=("$name|skip|gateway not running")
    done
fi

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
nginx_rps=""
for r in "${RESULTS[@]}"; do
    IFS='|' read -r name rps _ <<<"$r"
    if [[ $name == "nginx proxy_pass" && $rps != skip ]]; then nginx_rps=$rps; fi
done

ms() { awk -v us="$1" 'BEGIN { printf "%.2fms", us / 1000 }'; }

mkdir -p "$BENCH/results"
REPORT_FILE=$BENCH/results/$(date -u +%Y%m%dT%H%M%SZ).txt
{
    say ""
    say "gateway bench: $(date -u +%FT%TZ), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
    say "servers on CPU $SERVER_CPU (gateway and nginx proxy_pass on CPU $GATEWAY_CPUS, nginx with $NGINX_WORKERS workers), wrk on CPU $CLIENT_CPU, session store $SESSION_STORE, $CONNECTIONS connections, ${SECONDS_PER_TARGET}s per target after ${WARMUP_SECONDS}s warm-up, gateway log level $LOG_LEVEL, users logged in before the gateway rows: $([[ $WARM != 1 ]] && echo no || { [[ -n ${WARMED:-} ]] && echo yes || echo "no: the warm-up failed"; })"
    say "load average before the run: $LOAD_BEFORE (other work on the machine skews every figure)"
    say ""
    printf '%-32s %12s %10s %10s %8s %9s  %s\n' target requests/s p50 p99 errors "CPU us/req" "ratio to nginx proxy_pass"
    for r in "${RESULTS[@]}"; do
        IFS='|' read -r name rps p50 p99 http_errors socket_errors cpu_us <<<"$r"
        if [[ $rps == skip ]]; then
            printf '%-32s %12s   (%s)\n' "$name" skipped "$p50"
            continue
        fi
        ratio=n/a
        if [[ -n $nginx_rps && $name != *:* ]]; then ratio=$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN { printf "%.2fx", a / b }'); fi
        errors=$((http_errors + socket_errors))
        flag=""
        if ((errors > 0)); then flag="  INVALID: $http_errors responses >= 400, $socket_errors socket errors"; fi
        printf '%-32s %12.0f %10s %10s %8s %9s  %s%s\n' "$name" "$rps" "$(ms "$p50")" "$(ms "$p99")" "$errors" "${cpu_us:--}" "$ratio" "$flag"
    done
    say ""
    if [[ -n ${HALF_CONN:-} ]]; then
        say "half saturation: $HALF_CONN connections; the session path ran at $(awk -v a="${HALF_GATEWAY_RPS:-0}" -v b="$SESSION_RPS" 'BEGIN { printf "%.0f%%", 100 * a / b }') of its saturated rate"
        say "  p99 upstream direct $(ms "${HALF_DIRECT_P99:-0}"), nginx proxy_pass $(ms "${HALF_NGINX_P99:-0}"), gateway session $(ms "${HALF_GATEWAY_P99:-0}")"
        say "  gateway p99 added over upstream direct: $(ms $((${HALF_GATEWAY_P99:-0} - ${HALF_DIRECT_P99:-0}))), over nginx proxy_pass: $(ms $((${HALF_GATEWAY_P99:-0} - ${HALF_NGINX_P99:-0})))"
        say "  gateway p50 added over upstream direct: $(ms $((${HALF_GATEWAY_P50:-0} - ${HALF_DIRECT_P50:-0})))"
    fi
    if [[ -n ${IDLE_RESULT:-} ]]; then
        say "$IDLE_CONNECTIONS idle keep-alive connections: $IDLE_RESULT"
    fi
    if [[ -n ${STORM_RESULT:-} ]]; then
        say "login storm: session p99 $(ms "${HALF_GATEWAY_P99:-0}") alone -> $(ms "${STORM_P99:-0}") during the storm ($HALF_CONN connections)"
        say "  storm generator: $STORM_RESULT"
    fi
    if [[ -n $PEAK_RSS_KB ]]; then
        say "gateway peak RSS (VmHWM from /proc/$GATEWAY_PID/status): $((PEAK_RSS_KB / 1024)) MiB ($PEAK_RSS_KB kB)"
    else
        say "gateway peak RSS: n/a (gateway not running)"
    fi
} | tee "$REPORT_FILE"
say "(saved to ${REPORT_FILE#"$ROOT"/})"

if [[ -n $GATEWAY_SKIPPED && ${BENCH_REQUIRE_GATEWAY:-0} == 1 ]]; then
    exit 1
fi
