#!/usr/bin/env bash
# The container image, tested as far as this machine allows: no image registry is reachable, so
# the Dockerfile's build stage (FROM rust:...) and its distroless base cannot be pulled. What is
# tested is the Dockerfile's *final stage*, taken from the Dockerfile itself (its USER, ENV,
# EXPOSE, HEALTHCHECK, ENTRYPOINT and CMD lines), on `FROM scratch` with a root filesystem made
# here of what the distroless base and the build stage would put there: the release binary, the
# C runtime it links (glibc, libgcc_s, as listed by ldd), CA certificates, /var/lib/authgate
# owned by 65532. Podman builds and runs it; the test then checks, from the host:
#   - the container runs as uid 65532 (not root), with the config mounted read-only;
#   - /healthz answers and the image's own HEALTHCHECK (`authgate health`) passes;
#   - the gateway refuses an anonymous request (401) and lets an htpasswd user through to an
#     upstream on the host, with X-Remote-User set;
#   - SIGHUP (`podman kill --signal HUP`) reloads a changed users file;
#   - the image holds nothing but those files (no shell).
#
#   scripts/container-test.sh    # as root; called by scripts/package-test.sh after its release build
#
# The container has its own network, as under Docker or Kubernetes: the gateway listens on
# 0.0.0.0:8080 and its admin listener on 0.0.0.0:9090 inside it (the ports the image's EXPOSE and
# HEALTHCHECK name), published on free ports of 127.0.0.1; the upstream runs on the host and is
# reached as host.containers.internal.
# Podman flags for this sandbox: the crun runtime cannot raise RLIMIT_NOFILE/NPROC here and
# cgroups are in hybrid mode, so the test uses runc with the cgroupfs manager and lowered
# ulimits; podman cannot schedule the HEALTHCHECK without systemd, so the test runs it itself.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/authgate
IMAGE=localhost/authgate-test:$$
CTR=authgate-test-$$

step_start=$(date +%s)
step() {
    local now
    now=$(date +%s)
    printf '  [%4ss] %s\n' "$((now - step_start))" "$*"
    step_start=$now
}
fail() {
    printf 'container-test: FAILED: %s\n' "$*" >&2
    if [[ -n ${podman_started:-} ]]; then
        printf -- '--- container log ---\n' >&2
        "${PODMAN[@]}" logs "$CTR" >&2 2>&1 || true
    fi
    exit 1
}

((EUID == 0)) || fail "run as root (podman)"
need=()
command -v podman >/dev/null || need+=(podman)
[[ -x /usr/sbin/runc ]] || need+=(runc)
command -v htpasswd >/dev/null || need+=(apache2-utils)
if ((${#need[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
        --no-install-recommends "${need[@]}" >/dev/null
    step "installed ${need[*]}"
fi
PODMAN=(podman --runtime /usr/sbin/runc --cgroup-manager=cgroupfs)
[[ -x $BIN ]] || cargo build --release --locked -p gateway --bin authgate --quiet

work=$(mktemp -d)
upstream_pid=""
cleanup() {
    "${PODMAN[@]}" rm -f "$CTR" >/dev/null 2>&1 || true
    "${PODMAN[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true
    [[ -n $upstream_pid ]] && kill "$upstream_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- the root filesystem: what distroless/cc and the build stage would hold ---------------------
rootfs=$work/context/rootfs
umask 022
install -D -m 0755 "$BIN" "$rootfs/usr/bin/authgate"
# The shared libraries the binary links, at the paths the loader looks for them.
while read -r lib; do
    # 0755: the kernel needs execute permission on the loader (ld-linux) it maps.
    [[ -n $lib ]] && install -D -m 0755 "$lib" "$rootfs$lib"
done < <(ldd "$BIN" | grep -o '/[^ ]*')
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
install -d -m 0750 -o 65532 -g 65532 "$rootfs/var/lib/authgate"
install -d -m 0755 "$rootfs/etc/authgate" "$rootfs/tmp"

# The Dockerfile's final stage, its base and its COPY swapped for this root filesystem.
final_from=$(grep -n '^FROM ' Dockerfile | tail -1 | cut -d: -f1)
[[ -n $final_from ]] || fail "no FROM line in Dockerfile"
{
    echo "FROM scratch"
    echo "COPY rootfs/ /"
    tail -n +"$((final_from + 1))" Dockerfile | grep -v '^COPY --from=build'
} >"$work/context/Containerfile"
grep -q '^HEALTHCHECK' "$work/context/Containerfile" || fail "the final stage has no HEALTHCHECK"
"${PODMAN[@]}" build --quiet --format docker -t "$IMAGE" -f "$work/context/Containerfile" "$work/context" >/dev/null ||
    fail "podman build"
step "podman build: FROM scratch + the Dockerfile's final stage ($(du -sh "$rootfs" | cut -f1) root filesystem)"

# The image holds only what was put there: no shell, no package manager.
files=$("${PODMAN[@]}" image inspect "$IMAGE" --format '{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}')
[[ $files == '65532:65532 ["/usr/bin/authgate"] ["run"]' ]] || fail "image config: $files"

# --- a config, a users file and an upstream on the host ----------------------------------------
up=$(free_port)
mkdir -p "$work/etc" "$work/app"
echo hello-from-upstream >"$work/app/index.html"
(cd "$work/app" && exec python3 -m http.server "$up" --bind 0.0.0.0 >/dev/null 2>&1) &
upstream_pid=$!
htpasswd -bcB "$work/etc/htpasswd" alice 'container test password' 2>/dev/null
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/etc/session.key"
cat >"$work/etc/gateway.yaml" <<EOF
server:
  listen: "0.0.0.0:8080"
admin:
  listen: "0.0.0.0:9090"
upstream:
  url: "http://host.containers.internal:$up"
session:
  store: memory
  secret: "file:/etc/authgate/session.key"
data_dir: /var/lib/authgate
chain:
  - name: htpasswd
    type: htpasswd
    options:
      path: /etc/authgate/htpasswd
EOF
chmod 0644 "$work/etc/"*
# The secret as a Kubernetes Secret would mount it: readable by the container's user only.
chown 65532:65532 "$work/etc/session.key"
chmod 0600 "$work/etc/session.key"
# `check` in the image, on the config found at its default path (GATEWAY_CONFIG of the image).
out=$("${PODMAN[@]}" run --rm --no-healthcheck --network none --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
    -v "$work/etc:/etc/authgate:ro" "$IMAGE" check 2>&1) || fail "authgate check in the image: $out"
grep -q '^/etc/authgate/gateway.yaml: OK$' <<<"$out" || fail "unexpected check output: $out"
step "authgate check in the image: OK"

"${PODMAN[@]}" run -d --name "$CTR" -p 127.0.0.1::8080 -p 127.0.0.1::9090 \
    --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
    -v "$work/etc:/etc/authgate:ro" "$IMAGE" >/dev/null 2>"$work/run.err" || fail "podman run: $(cat "$work/run.err")"
podman_started=1
port=$("${PODMAN[@]}" port "$CTR" 8080/tcp | head -1 | sed 's/.*://')
admin=$("${PODMAN[@]}" port "$CTR" 9090/tcp | head -1 | sed 's/.*://')
[[ -n $port && -n $admin ]] || fail "podman port: no published ports"
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$admin/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$admin/healthz" >/dev/null || fail "/healthz does not answer"
step "podman run: /healthz answers"

uid=$("${PODMAN[@]}" top "$CTR" user huser 2>/dev/null | tail -1 | tr -s ' ')
[[ $uid == "65532 65532" ]] || fail "the gateway does not run as 65532: '$uid'"
"${PODMAN[@]}" healthcheck run "$CTR" >/dev/null 2>&1 || fail "the image's HEALTHCHECK fails"
# The container's files (less the few podman writes at run time): the binary is the only
# program (no shell, no package manager).
programs=$("${PODMAN[@]}" export "$CTR" | tar -tv | awk '$1 ~ /^-..x/ && $NF !~ /\.so/ {print $NF}' |
    grep -Ev '^(etc/(hostname|hosts|resolv\.conf)|run/\.containerenv)$' | sort | tr '\n' ' ')
[[ $programs == "usr/bin/authgate " ]] || fail "programs in the image besides authgate: $programs"
step "runs as uid 65532; HEALTHCHECK passes; no shell in the image"

code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")
[[ $code == 401 ]] || fail "anonymous request: $code, expected 401"
body=$(curl -fsS -u 'alice:container test password' "http://127.0.0.1:$port/index.html") ||
    fail "alice's request failed"
[[ $body == hello-from-upstream ]] || fail "alice got: $body"
code=$(curl -s -o /dev/null -w '%{http_code}' -u 'alice:wrong password here' "http://127.0.0.1:$port/")
[[ $code == 401 ]] || fail "wrong password: $code, expected 401"
step "401 anonymous and wrong password; alice reaches the upstream"

# A new user, then SIGHUP: the mounted file is re-read.
htpasswd -bB "$work/etc/htpasswd" bob 'another test password' 2>/dev/null
"${PODMAN[@]}" kill --signal HUP "$CTR" >/dev/null
ok=false
for _ in $(seq 1 50); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -u 'bob:another test password' "http://127.0.0.1:$port/index.html")
    [[ $code == 200 ]] && ok=true && break
    sleep 0.1
done
$ok || fail "bob is refused after SIGHUP ($code)"
"${PODMAN[@]}" stop -t 10 "$CTR" >/dev/null 2>&1 || fail "podman stop"
status=$("${PODMAN[@]}" inspect "$CTR" --format '{{.State.ExitCode}}')
[[ $status == 0 ]] || fail "the gateway exited with $status on SIGTERM"
step "SIGHUP picks up a new user; SIGTERM stops it with status 0"

echo "container-test: PASSED"
