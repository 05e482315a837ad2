#!/usr/bin/env bash
# The Debian package, tested as an operator installs it: build it with cargo-deb (one release
# build), check its contents and its systemd unit, install it with dpkg, run the installed
# binary's `check` on the packaged config and `--version`, then purge it (the machine is left as
# it was: the package, its state, its system user). Then the container image, built from the
# Dockerfile's final stage with podman and run (scripts/container-test.sh).
#
#   scripts/package-test.sh          # as root on Debian; called by scripts/test.sh
#
# Refuses to run when an authgate package is already installed (it would be replaced, then
# purged). Prints the time of each step.
set -euo pipefail

# cargo-deb from crates.io, pinned (`cargo install --locked` builds it once per machine).
CARGO_DEB_VERSION=3.6.2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

step_start=$(date +%s)
step() {
    local now
    now=$(date +%s)
    printf '  [%4ss] %s\n' "$((now - step_start))" "$*"
    step_start=$now
}
fail() {
    printf 'package-test: FAILED: %s\n' "$*" >&2
    exit 1
}

((EUID == 0)) || fail "run as root (dpkg -i, adduser, apt-get)"
command -v dpkg-deb >/dev/null || fail "dpkg-deb not found (this test needs Debian)"
if dpkg-query -W -f='${db:Status-Status}' authgate 2>/dev/null | grep -qx installed; then
    fail "an authgate package is already installed here; the test would replace and purge it"
fi

# Tools: systemd-analyze (from the systemd package; it verifies units without systemd as PID 1),
# adduser (the package's postinst).
need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v adduser >/dev/null || need+=(adduser)
if ((${#need[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
        --no-install-recommends "${need[@]}" >/dev/null
    step "installed ${need[*]}"
fi
if [[ $(cargo deb --version 2>/dev/null) != *"$CARGO_DEB_VERSION"* ]]; then
    cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" --quiet
    step "installed cargo-deb $CARGO_DEB_VERSION"
fi

# --- build: one release build of the binary, packaged as it is -------------------------------
cargo build --release --locked -p gateway --bin authgate --quiet
step "cargo build --release ($(du -h "$TARGET_DIR/release/authgate" | cut -f1) binary)"
deb=$TARGET_DIR/debian/authgate-test.deb
rm -f "$deb"
cargo deb -p gateway --no-build --quiet --output "$deb"
[[ -f $deb ]] || fail "cargo deb wrote no $deb"
step "cargo deb --no-build: $(basename "$deb") ($(du -h "$deb" | cut -f1))"

# --- contents ---------------------------------------------------------------------------------
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/authgate ./etc/authgate/gateway.yaml ./usr/lib/systemd/system/authgate.service \
    ./usr/share/doc/authgate/copyright; do
    grep -q " $path\$" <<<"$contents" || fail "$path is not in the package:
$contents"
done
grep -Eq '^-rwxr-xr-x (root/root|0/0) .* \./usr/bin/authgate$' <<<"$contents" || fail "/usr/bin/authgate is not 0755 root"
info=$(dpkg-deb -I "$deb")
grep -q '^ Package: authgate$' <<<"$info" || fail "the package is not named authgate: $info"
[[ $(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles) == /etc/authgate/gateway.yaml ]] ||
    fail "/etc/authgate/gateway.yaml is not the one conffile"
step "contents: binary, unit, conffile, copyright"

# --- install ----------------------------------------------------------------------------------
cleanup() {
    if dpkg-query -W authgate >/dev/null 2>&1; then dpkg -P authgate >/dev/null 2>&1 || true; fi
    if [[ ${user_created:-false} == true ]] && getent passwd authgate >/dev/null; then
        deluser --system --quiet authgate >/dev/null 2>&1 || true
        getent group authgate >/dev/null && delgroup --system --quiet authgate >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
user_created=false
getent passwd authgate >/dev/null || user_created=true
dpkg -i "$deb" >/dev/null || fail "dpkg -i failed"
step "dpkg -i"

getent passwd authgate >/dev/null || fail "postinst created no system user authgate"
[[ $(stat -c '%U:%G %a' /etc/authgate) == "root:authgate 750" ]] ||
    fail "/etc/authgate is $(stat -c '%U:%G %a' /etc/authgate), not root:authgate 750"
unit=/usr/lib/systemd/system/authgate.service
# verify: unknown directives, a missing ExecStart binary or user, bad values. It prints
# warnings about the host (no systemd running) that are not about this unit: keep its lines.
verify=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit:
$verify"
if grep -i 'authgate' <<<"$verify"; then fail "systemd-analyze verify warns about the unit"; fi
step "systemd-analyze verify: clean"
# The hardening score, offline (no running systemd needed): exposure 0.0-10.0; fail above 2.0.
exposure=$(systemd-analyze security --offline=true --threshold=20 "$unit" 2>&1) ||
    fail "systemd-analyze security: exposure above 2.0:
$exposure"
step "systemd-analyze security: $(grep -o 'Overall exposure level.*' <<<"$exposure")"

/usr/bin/authgate --version | grep -Eq '^authgate [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{7,}|unknown)\)$' ||
    fail "authgate --version: $(/usr/bin/authgate --version)"
# As the service runs it: the system user, the packaged config (data_dir /var/lib/authgate,
# which systemd's StateDirectory= would create).
install -d -o authgate -g authgate -m 0750 /var/lib/authgate
out=$(cd / && setpriv --reuid authgate --regid authgate --init-groups /usr/bin/authgate check --config /etc/authgate/gateway.yaml 2>&1) ||
    fail "authgate check on the packaged config:
$out"
grep -q '^/etc/authgate/gateway.yaml: OK$' <<<"$out" || fail "unexpected check output: $out"
# Without --config, from a directory without gateway.yaml: the packaged config is the default.
out=$(cd / && env -u GATEWAY_CONFIG -u AUTHGATE_CONFIG \
    setpriv --reuid authgate --regid authgate --init-groups /usr/bin/authgate check 2>&1) || fail "authgate check (default config): $out"
grep -q '^/etc/authgate/gateway.yaml: OK$' <<<"$out" || fail "the default config is not /etc/authgate/gateway.yaml: $out"
step "installed authgate --version: $(/usr/bin/authgate --version); check: OK"

# --- purge ------------------------------------------------------------------------------------
dpkg -P authgate >/dev/null || fail "dpkg -P failed"
for left in /usr/bin/authgate /etc/authgate /var/lib/authgate "$unit"; do
    [[ ! -e $left ]] || fail "$left is left after dpkg -P"
done
step "dpkg -P: nothing left"

# --- Kubernetes manifests: they parse, and the ConfigMap's config passes `check` -------------------
python3 -c 'import yaml' 2>/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null
k8s=$(mktemp -d)
python3 - "$k8s" deploy/kubernetes/*.yaml <<'PY'
import os, sys, yaml
work, kinds, config = sys.argv[1], [], None
for path in sys.argv[2:]:
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if doc is None:
                continue
            for key in ("apiVersion", "kind", "metadata"):
                assert key in doc, f"{path}: a document without {key}"
            kinds.append(doc["kind"])
            if doc["kind"] == "ConfigMap":
                config = doc["data"]["gateway.yaml"]
for kind in ("Deployment", "Service", "ConfigMap", "Secret"):
    assert kind in kinds, f"no {kind} in deploy/kubernetes/"
# The mounted Secret and the emptyDir, here in a temp dir.
config = config.replace("/run/secrets/authgate/", f"{work}/secret/").replace("/var/lib/authgate", f"{work}/state")
os.makedirs(f"{work}/secret")
with open(f"{work}/gateway.yaml", "w") as f:
    f.write(config)
with open(f"{work}/secret/session", "w") as f:
    f.write(os.urandom(24).hex())
open(f"{work}/secret/htpasswd", "w").close()
print(f"  deploy/kubernetes: {len(kinds)} documents ({', '.join(sorted(set(kinds)))})")
PY
"$TARGET_DIR/release/authgate" check --config "$k8s/gateway.yaml" >/dev/null ||
    fail "the ConfigMap's gateway.yaml does not pass check"
rm -rf "$k8s"
step "kubernetes manifests parse; the ConfigMap's config passes check"

# --- the container image: the Dockerfile's final stage on this release build, under podman ------
scripts/container-test.sh || fail "the container test failed"
step "container image (scripts/container-test.sh)"

echo "package-test: PASSED"
