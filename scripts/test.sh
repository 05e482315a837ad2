#!/usr/bin/env bash
# The one test command: sets up what the suite needs on a Debian (bookworm) machine, then runs
# `cargo fmt --check`, `cargo clippy -D warnings`, the whole test suite, the Debian package test
# (scripts/package-test.sh), then every libFuzzer
# target of fuzz/ for a short while (scripts/fuzz.sh; a crash fails the run).
#
#   scripts/test.sh                  # from anywhere; run as root (installs packages, starts services)
#   CI=true scripts/test.sh          # CI: a missing or unreachable service is a hard failure
#   FUZZ_SECONDS=60 scripts/test.sh  # seconds per fuzz target (default 20; 0 skips, not under CI)
#   PACKAGE_TEST=0 scripts/test.sh   # skip the Debian package test (scripts/package-test.sh; not under CI)
#
# Idempotent: packages already installed are not reinstalled, running services are left alone.
# See tests/README.md for what each test group needs.
set -euo pipefail

# Debian packages the tests use: slapd (LDAP tests start their own slapd), ldap-utils (ldapadd),
# apache2-utils (htpasswd hashes), openssl (passwd hashes, test certs), chromium + driver (browser
# login tests), nginx (upstream and forward-auth tests), wrk (bench), python3-venv (Django hashers; PyJWT for the jwt tests; Django + PyJWT for the Django recipe test, from PyPI),
# redis-server (the rediss:// test starts its own TLS instance), g++ (libfuzzer-sys compiles
# libFuzzer's C++ sources for the fuzz targets), nodejs (the OpenID provider of the SSO tests,
# `oidc-provider` from npm; npm itself is checked below, since NodeSource's nodejs bundles it).
PACKAGES="slapd ldap-utils apache2-utils openssl chromium chromium-driver nginx wrk python3-venv redis-server g++ nodejs"

# Distro services whose own instance must stay off: the tests start private ones on free ports.
SERVICES_KEPT_OFF="slapd nginx"

SERVICE_WAIT_SECONDS=${SERVICE_WAIT_SECONDS:-60}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CI=${CI:-false}
[[ $CI == 1 ]] && CI=true

# ---------------------------------------------------------------------------------------------
# Output helpers and timing
# ---------------------------------------------------------------------------------------------
START_ALL=$(date +%s)
SECTION_NAME=""
SECTION_START=0
TIMINGS=()
PROBLEMS=()

section() {
    end_section
    SECTION_NAME=$1
    SECTION_START=$(date +%s)
    printf '\n==== %s ====\n' "$1"
}

end_section() {
    if [[ -n $SECTION_NAME ]]; then
        TIMINGS+=("$(printf '%-28s %5ss' "$SECTION_NAME" "$(($(date +%s) - SECTION_START))")")
        SECTION_NAME=""
    fi
}

note() { printf '  %s\n' "$*"; }
warn() { printf '  WARNING: %s\n' "$*" >&2; }
die() {
    printf '\nERROR: %s\n' "$*" >&2
    exit 1
}

# A service the tests need is missing: fatal in CI, a loud warning otherwise (the tests that need
# it then skip with their own message).
service_problem() {
    if [[ $CI == true ]]; then
        die "$* (CI=true: the tests that need it would fail; fix the machine)"
    fi
    warn "$* -- tests that need it will SKIP (they fail under CI=true)"
    PROBLEMS+=("$*")
}

summary() {
    local rc=$?
    end_section
    printf '\n==== summary ====\n'
    local t
    for t in "${TIMINGS[@]}"; do note "$t"; done
    for t in "${PROBLEMS[@]}"; do note "degraded: $t"; done
    note "$(printf '%-28s %5ss' total "$(($(date +%s) - START_ALL))")"
    if ((rc == 0)); then
        printf 'scripts/test.sh: PASSED\n'
    else
        printf 'scripts/test.sh: FAILED (exit %s)\n' "$rc"
    fi
}
trap summary EXIT
# Killed: the summary must say FAILED (an EXIT trap after a signal would see status 0).
trap 'exit 143' TERM
trap 'exit 130' INT

# Waits until "$@" succeeds, at most SERVICE_WAIT_SECONDS. Returns 1 on timeout.
wait_for() {
    local deadline=$((SECONDS + SERVICE_WAIT_SECONDS))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

is_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

[[ $FUZZ_SECONDS =~ ^[0-9]+$ ]] || die "FUZZ_SECONDS must be a whole number of seconds, not \`$FUZZ_SECONDS'"
if [[ $CI == true ]] && ((FUZZ_SECONDS == 0)); then
    die "FUZZ_SECONDS=0 skips fuzzing, which CI=true never does"
fi

# ---------------------------------------------------------------------------------------------
section "packages"
# ---------------------------------------------------------------------------------------------
missing=()
for pkg in $PACKAGES; do
    is_installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    ((EUID == 0)) || die "missing packages (${missing[*]}); run as root to install them"
    note "installing: ${missing[*]}"
    # Keep package scripts from starting distro services (slapd on :389, nginx on :80): a
    # policy-rc.d answering 101 is Debian's switch for that. Leave an existing one alone.
    policy=/usr/sbin/policy-rc.d
    own_policy=false
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=true
    fi
    apt_log=$(mktemp "${TMPDIR:-/tmp}/test-sh-apt.XXXXXX")
    apt_rc=0
    {
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq -o DPkg::Lock::Timeout=300 &&
            apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}"
    } >"$apt_log" 2>&1 || apt_rc=$?
    if [[ $own_policy == true ]]; then rm -f "$policy"; fi
    if ((apt_rc != 0)); then
        tail -n 40 "$apt_log" >&2
        die "apt-get failed (exit $apt_rc) installing: ${missing[*]} (full log: $apt_log)"
    fi
    rm -f "$apt_log"
    note "installed: ${missing[*]}"
else
    note "all present: $PACKAGES"
fi

# Debian's nodejs ships without npm (NodeSource's includes it): the SSO tests run `npm ci`.
if ! command -v npm >/dev/null; then
    ((EUID == 0)) || die "npm is missing; run as root to install it"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
        --no-install-recommends npm >/dev/null || die "apt-get failed installing npm"
    note "installed: npm"
fi

# The distro instance only (test instances run with their own config files).
distro_instance_running() {
    case $1 in
    slapd) pgrep -f '^/usr/sbin/slapd .*-F /etc/ldap/slapd\.d' ;;
    nginx) pgrep -f '^nginx: master process /usr/sbin/nginx( -g|$)' ;;
    *) false ;;
    esac >/dev/null
}
for svc in $SERVICES_KEPT_OFF; do
    [[ -e /etc/init.d/$svc || -e /lib/systemd/system/$svc.service ]] || continue
    if [[ -d /run/systemd/system ]]; then
        systemctl disable --now "$svc" >/dev/null 2>&1 || true
    else
        update-rc.d "$svc" disable >/dev/null 2>&1 || true
        if distro_instance_running "$svc"; then
            note "stopping the distro $svc service"
            /etc/init.d/"$svc" stop >/dev/null 2>&1 || true
        fi
    fi
done
note "distro services kept off: $SERVICES_KEPT_OFF"

# ---------------------------------------------------------------------------------------------
section "services"
# ---------------------------------------------------------------------------------------------
pg_answers() { pg_isready -q -h 127.0.0.1 -p 5432 -t 2; }
pg_role_ok() { psql -h 127.0.0.1 -p 5432 -U "$1" -d postgres -tAc 'select 1' >/dev/null 2>&1; }
mysql_answers() { mariadb-admin -h 127.0.0.1 -P 3306 -u root --connect-timeout=2 ping; }
redis_answers() { [[ $(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null) == PONG ]]; }

# PostgreSQL: 127.0.0.1:5432, trust auth, database `test`.
if command -v pg_isready >/dev/null && [[ -d /etc/postgresql ]] && [[ -n $(ls /etc/postgresql) ]]; then
    if ! pg_answers; then
        note "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start || true
    fi
    if wait_for pg_answers; then
        PGUSER=""
        for role in postgres root; do
            if pg_role_ok "$role"; then
                PGUSER=$role
                break
            fi
        done
        if [[ -z $PGUSER ]]; then
            service_problem "PostgreSQL answers but neither role postgres nor root can log in (trust auth expected)"
        else
            if [[ $(psql -h 127.0.0.1 -U "$PGUSER" -d postgres -tAc "select 1 from pg_database where datname = 'test'") != 1 ]]; then
                psql -h 127.0.0.1 -U "$PGUSER" -d postgres -qc 'create database test' ||
                    service_problem "cannot create PostgreSQL database test"
            fi
            export PGUSER PGHOST=127.0.0.1 PGPORT=5432
            export TEST_POSTGRES_URL="postgres://$PGUSER@127.0.0.1:5432/test"
            note "PostgreSQL ready: $TEST_POSTGRES_URL"
        fi
    else
        service_problem "PostgreSQL does not answer on 127.0.0.1:5432 after ${SERVICE_WAIT_SECONDS}s"
    fi
else
    service_problem "PostgreSQL is not installed"
fi

# MariaDB: 127.0.0.1:3306, root without password, database `test`.
if [[ -x /usr/sbin/mariadbd ]] && command -v mariadb-admin >/dev/null; then
    if ! mysql_answers >/dev/null 2>&1; then
        note "starting MariaDB"
        install -d -o mysql -g mysql /run/mysqld 2>/dev/null || mkdir -p /run/mysqld
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    fi
    if wait_for mysql_answers; then
        if mariadb -h 127.0.0.1 -P 3306 -u root -e 'CREATE DATABASE IF NOT EXISTS test'; then
            export TEST_MYSQL_URL="mysql://root@127.0.0.1:3306/test"
            note "MariaDB ready: $TEST_MYSQL_URL"
        else
            service_problem "MariaDB answers but root cannot create database test"
        fi
    else
        service_problem "MariaDB does not answer on 127.0.0.1:3306 after ${SERVICE_WAIT_SECONDS}s"
    fi
else
    service_problem "MariaDB is not installed"
fi

# Redis: 127.0.0.1:6379.
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
    if ! redis_answers; then
        note "starting Redis"
        mkdir -p /var/lib/redis /var/log/redis
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/ci.log
    fi
    if wait_for redis_answers; then
        export TEST_REDIS_URL="redis://127.0.0.1:6379"
        note "Redis ready: $TEST_REDIS_URL"
    else
        service_problem "Redis does not answer on 127.0.0.1:6379 after ${SERVICE_WAIT_SECONDS}s"
    fi
else
    service_problem "Redis is not installed"
fi

# The tests find their tools on PATH (slapd and nginx live in /usr/sbin).
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac
for tool in slapd ldapadd htpasswd openssl chromium chromedriver nginx python3; do
    command -v "$tool" >/dev/null || service_problem "$tool is not on PATH"
done

export CI
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
if [[ $CI == true ]]; then
    # A fresh clone builds once: incremental artifacts are wasted time and disk.
    export CARGO_INCREMENTAL=0
fi

# ---------------------------------------------------------------------------------------------
section "cargo fmt --check"
# ---------------------------------------------------------------------------------------------
cargo fmt --all -- --check

# ---------------------------------------------------------------------------------------------
section "cargo clippy"
# ---------------------------------------------------------------------------------------------
cargo clippy --workspace --all-targets -- -D warnings

# ---------------------------------------------------------------------------------------------
section "cargo test"
# ---------------------------------------------------------------------------------------------
cargo test --workspace

# ---------------------------------------------------------------------------------------------
section "package (.deb: build, contents, systemd-analyze verify, dpkg -i, check, purge)"
# ---------------------------------------------------------------------------------------------
# One release build, packaged by cargo-deb; under CI=true a failure fails the run. PACKAGE_TEST=0
# skips it outside CI (not as root, or no dpkg).
if [[ ${PACKAGE_TEST:-1} == 0 && $CI != true ]]; then
    warn "PACKAGE_TEST=0: the package test is skipped (CI=true never skips it)"
    PROBLEMS+=("package test skipped (PACKAGE_TEST=0)")
else
    scripts/package-test.sh
fi

# ---------------------------------------------------------------------------------------------
section "fuzz (${FUZZ_SECONDS}s per target)"
# ---------------------------------------------------------------------------------------------
if ((FUZZ_SECONDS == 0)); then
    warn "FUZZ_SECONDS=0: fuzz targets skipped (CI=true never skips them)"
    PROBLEMS+=("fuzzing skipped (FUZZ_SECONDS=0)")
else
    # Every target of fuzz/Cargo.toml; a crash, a timeout or an out-of-memory input fails the run
    # and leaves the input in fuzz/artifacts/<target>/.
    scripts/fuzz.sh "$FUZZ_SECONDS"
fi
