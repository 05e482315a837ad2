#!/usr/bin/env bash
# Soak test of the release gateway (bounded; not part of the CI suite).
#   bench/soak.sh                 # 3 minutes
#   SOAK_SECONDS=60 bench/soak.sh
# Builds the release binary, starts nginx as the upstream (it logs the identity headers of
# every forwarded request), an `http` auth backend (bench/soak/auth_service.py) and the gateway
# on a config file; then for the duration runs wrk on a session route and on a Basic route, a
# login/logout loop through the `http` backend, a reload every 3 s alternating two configs
# (they name the extra identity header differently: `X-Config-A` vs `X-Config-B`) and a restart
# of the auth backend in the middle. Prints the figures and exits non-zero when a check fails:
# no 5xx on the wrk routes, login 5xx only inside the backend-restart window, no failed reload,
# RSS flat (end within 20% of the start), every forwarded request carrying exactly one config's
# header.
set -euo pipefail
DURATION="${SOAK_SECONDS:-180}"
root="$(cd "$(dirname "$0")/.." && pwd)"
soak="$root/bench/soak"
for tool in wrk nginx python3 curl; do
    command -v "$tool" >/dev/null || { echo "soak: $tool is required" >&2; exit 2; }
done

echo "== building the release binary"
(cd "$root" && CARGO_INCREMENTAL=0 cargo build --release -q -p gateway --bin authgate)
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="$target_dir/release/authgate"

dir="$(mktemp -d -t gateway-soak.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$dir/nginx.pid" ] && kill -QUIT "$(cat "$dir/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
GW=$(free_port); ADMIN=$(free_port); UP=$(free_port); AUTH=$(free_port)
base="http://127.0.0.1:$GW"

mkdir -p "$dir/nginx-tmp"
cat > "$dir/nginx.conf" <<NGINX
worker_processes 1;
error_log $dir/nginx.err warn;
pid $dir/nginx.pid;
events { worker_connections 1024; }
http {
    client_body_temp_path $dir/nginx-tmp; proxy_temp_path $dir/nginx-tmp;
    fastcgi_temp_path $dir/nginx-tmp; uwsgi_temp_path $dir/nginx-tmp; scgi_temp_path $dir/nginx-tmp;
    log_format v '\$msec|\$status|\$http_x_remote_user|\$http_x_config_a|\$http_x_config_b';
    server {
        listen 127.0.0.1:$UP;
        access_log $dir/upstream.log v buffer=256k flush=1s;
        location / { return 200 "ok\n"; }
    }
}
NGINX
nginx -p "$dir" -c "$dir/nginx.conf"

start_auth() {
    python3 "$soak/auth_service.py" "$AUTH" & auth_pid=$!
    pids+=("$auth_pid")
}
start_auth

write_config() { # $1 = A | B
    cat > "$dir/gateway.yaml.tmp" <<YAML
server:
  listen: "127.0.0.1:$GW"
  public_url: "$base"
admin:
  listen: "127.0.0.1:$ADMIN"
upstream:
  url: "http://127.0.0.1:$UP"
  timeout: 10s
log:
  format: json
  level: warn
session:
  secure: false
  secret: "soak-secret-0123456789abcdef-0123456789"
protection:
  max_failures: 1000000
identity_headers:
  extra:
    X-Config-$1: cv
chain:
  - name: ops
    type: static
    options:
      allow_plaintext: true
      users:
        alice: { password: alice-pw, attributes: { cv: x } }
        bob: { password: bob-pw, attributes: { cv: x } }
  - name: hr
    type: http
    on_error: deny
    timeout: 2s
    options:
      url: "http://127.0.0.1:$AUTH/authenticate"
      attributes: { username: username, email: email, extra: { cv: cv } }
routes:
  - match: { path: / }
    access: authenticated
YAML
    mv "$dir/gateway.yaml.tmp" "$dir/gateway.yaml"
}
write_config A
"$bin" run -c "$dir/gateway.yaml" 2>"$dir/gateway.err" & gw_pid=$!
pids+=("$gw_pid")
for _ in $(seq 100); do
    curl -fs -o /dev/null "$base/_auth/login" && break
    sleep 0.1
done
curl -fs -o /dev/null "$base/_auth/login" || { echo "gateway did not start"; cat "$dir/gateway.err"; exit 1; }

# A session for alice (wrk replays its cookie).
jar="$dir/jar"
csrf=$(curl -s -c "$jar" -b "$jar" "$base/_auth/login" | sed -n 's/.*name="csrf"[^>]*value="\([^"]*\)".*/\1/p' | head -1)
curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "username=alice" \
    --data-urlencode "password=alice-pw" --data-urlencode "csrf=$csrf" "$base/_auth/login"
session=$(awk '$6 == "gw_session" {print $7}' "$jar")
[ -n "$session" ] || { echo "soak: could not log alice in"; exit 1; }
basic="Basic $(printf 'bob:bob-pw' | base64)"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$gw_pid/status"; }
metric() { curl -s "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" 'index($0, m) == 1 {s += $NF} END {print s + 0}'; }

echo "== soak for ${DURATION}s: wrk (session + Basic), login loop, reload every 3s, backend restart at $((DURATION / 2))s"
t0=$(date +%s.%N)
wrk -t1 -c8 -d"${DURATION}s" --timeout 10s -s "$soak/counts.lua" -H "Cookie: gw_session=$session" \
    "$base/app/session" > "$dir/wrk-session.out" 2>&1 & pids+=($!)
wrk -t1 -c8 -d"${DURATION}s" --timeout 10s -s "$soak/counts.lua" -H "Authorization: $basic" \
    "$base/app/basic" > "$dir/wrk-basic.out" 2>&1 & pids+=($!)
python3 "$soak/login_loop.py" "$base" "$DURATION" > "$dir/logins.out" 2>"$dir/logins.err" & pids+=($!)

sleep 10
rss_start=$(rss)
sighups=0
version=A
restart_from=""; restart_to=""
half=$((DURATION / 2))
while :; do
    now=$(date +%s.%N)
    elapsed=$(python3 -c "print(int($now - $t0))")
    [ "$elapsed" -ge "$((DURATION - 2))" ] && break
    if [ -z "$restart_from" ] && [ "$elapsed" -ge "$half" ]; then
        rss_mid=$(rss)
        restart_from=$(date +%s.%N)
        kill "$auth_pid"; wait "$auth_pid" 2>/dev/null || true
        sleep 2
        start_auth
        restart_to=$(date +%s.%N)
        echo "   auth backend restarted (down ~2s)"
    fi
    if [ "$version" = A ]; then version=B; else version=A; fi
    write_config "$version"
    kill -HUP "$gw_pid"
    sighups=$((sighups + 1))
    sleep 3
done
wait "${pids[2]}" "${pids[3]}" "${pids[4]}" 2>/dev/null || true
rss_end=$(rss)
reloads_ok=$(metric 'gateway_reloads_total{result="ok"}')
reloads_failed=$(metric 'gateway_reloads_total{result="error"}')
kill -0 "$gw_pid" 2>/dev/null && gw_alive=yes || gw_alive=no
kill -TERM "$gw_pid"; wait "$gw_pid" 2>/dev/null || true
kill -QUIT "$(cat "$dir/nginx.pid")"; sleep 1; rm -f "$dir/nginx.pid"

python3 - "$dir" "$restart_from" "$restart_to" "$rss_start" "$rss_mid" "$rss_end" "$sighups" \
    "$reloads_ok" "$reloads_failed" "$gw_alive" <<'PY'
import json, re, sys
d, r_from, r_to = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rss = [int(x) for x in sys.argv[4:7]]
sighups, ok, failed, alive = int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9]), sys.argv[10]
def wrk(name):
    text = open(f"{d}/wrk-{name}.out").read()
    m = re.search(r"WRKCOUNTS (.*)", text)
    if not m:
        sys.exit(f"wrk {name} printed no counts:\n{text}")
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
ws, wb = wrk("session"), wrk("basic")
logins = json.loads(open(f"{d}/logins.out").read())
# 5xx of the login loop are explained when inside the restart window (+3 s for the chain's
# 2 s entry timeout and the retry).
unexplained = [t for t in logins["t5xx"] if not (r_from - 1 <= t <= r_to + 3)]
# nginx logs an absent header as "-".
lines = [[f if f != "-" else "" for f in l.rstrip("\n").split("|")]
         for l in open(f"{d}/upstream.log")]
mixed = sum(1 for l in lines if l[3] and l[4])
neither = sum(1 for l in lines if not l[3] and not l[4])
seen_a = sum(1 for l in lines if l[3] and not l[4])
seen_b = sum(1 for l in lines if l[4] and not l[3])
total = ws["total"] + wb["total"] + logins["requests"]
print(f"requests: {int(total)} (wrk session {int(ws['total'])}, wrk Basic {int(wb['total'])}, "
      f"login loop {logins['requests']}); forwarded to nginx: {len(lines)}")
print(f"5xx: wrk session {int(ws['s5xx'])}, wrk Basic {int(wb['s5xx'])}, login loop "
      f"{len(logins['t5xx'])} ({len(unexplained)} outside the backend restart window); "
      f"socket errors {int(ws['sockerr'] + wb['sockerr'])}")
print(f"wrk p99: session {ws['p99ms']} ms, Basic {wb['p99ms']} ms; non-2xx wrk: "
      f"{int(ws['s3xx'] + ws['s4xx'] + wb['s3xx'] + wb['s4xx'])}")
print(f"login loop: {logins['cycles']} cycles, {logins['login_ok']} logins, "
      f"{logins['logout_ok']} logouts, statuses {logins['statuses']}")
print(f"reloads: {sighups} SIGHUPs sent, {ok} ok, {failed} failed (gateway_reloads_total)")
print(f"RSS kB: start {rss[0]}, middle {rss[1]}, end {rss[2]}")
print(f"config versions at the upstream: A {seen_a}, B {seen_b}, mixed {mixed}, neither {neither}")
checks = {
    "gateway alive at the end": alive == "yes",
    "no 5xx on the wrk routes": ws["s5xx"] == 0 and wb["s5xx"] == 0,
    "no socket errors": ws["sockerr"] + wb["sockerr"] == 0,
    "wrk routes all 2xx": ws["s2xx"] == ws["total"] and wb["s2xx"] == wb["total"],
    "login 5xx only in the restart window": not unexplained,
    "login loop otherwise healthy": logins["login_other"] == 0 and logins["app_other"] == 0
        and logins["logout_other"] == 0 and logins["errors"] == 0,
    "no failed reload": failed == 0 and ok >= sighups,
    "RSS flat (end within 20% of start)": rss[2] <= rss[0] * 1.2,
    "each forwarded request saw exactly one config": mixed == 0 and neither == 0,
    "both configs served": seen_a > 0 and seen_b > 0,
}
bad = [k for k, v in checks.items() if not v]
for k, v in checks.items():
    print(f"  [{'ok' if v else 'FAIL'}] {k}")
sys.exit(1 if bad else 0)
PY
