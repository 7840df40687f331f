#!/usr/bin/env bash
# The test suite, for people and CI alike (arguments go to pytest: scripts/test.sh -k cli -x).
#
# Installs what is missing (.venv with botfleet[server,test], frontend npm packages, Debian's
# redis-server), starts a private Redis on a free port (stopped on exit), uses PostgreSQL on
# 127.0.0.1:5432 when it answers (starting a local cluster if one is installed but down), then
# runs pytest and exits with its code. BOTFLEET_TEST_REDIS_URL / BOTFLEET_TEST_POSTGRES_URL set
# beforehand are used as they are. The agent's `systemd --user` path is tested on a Debian VM
# (scripts/systemd_vm.sh: the image is built once into var/systemd-vm, in the background while
# the rest installs; BOTFLEET_TEST_SYSTEMD_VM=0 leaves that test out, BOTFLEET_SYSTEMD_VM=DIR
# uses an image built before).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/venv.sh

VM_LOG=""
VM_PID=""
vm_packages=()
if [ -z "${BOTFLEET_SYSTEMD_VM:-}" ] && [ "${BOTFLEET_TEST_SYSTEMD_VM:-1}" = 1 ]; then
    vm_packages=(debootstrap:debootstrap mkfs.ext4:e2fsprogs qemu-system-x86_64:qemu-system-x86
                 qemu-img:qemu-utils socat:socat)
fi
ensure_debian_packages redis-server:redis-server sshd:openssh-server chromium:chromium "${vm_packages[@]}"
if [ "${#vm_packages[@]}" -gt 0 ]; then
    # The image build (debootstrap: mostly downloads) goes on while the venv and the panel build.
    VM_LOG="$(mktemp -t botfleet-systemd-vm.XXXXXX)"
    log "systemd VM: preparing the image in the background (log: $VM_LOG)"
    setsid bash scripts/systemd_vm.sh prepare >"$VM_LOG" 2>&1 &
    VM_PID=$!
    trap 'kill -- -"$VM_PID" 2>/dev/null || true' EXIT   # replaced by cleanup below
fi
ensure_venv server,test
ensure_frontend_deps
build_frontend
PY=.venv/bin/python

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- Redis: a private server, nothing kept on disk -----------------------------------------
REDIS_PID=""
REDIS_DIR=""
cleanup() {
    if [ -n "$VM_PID" ]; then kill -- -"$VM_PID" 2>/dev/null || true; fi   # a build left running
    if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
    if [ -n "$REDIS_DIR" ]; then rm -rf "$REDIS_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${BOTFLEET_TEST_REDIS_URL:-}" ]; then
    REDIS_DIR="$(mktemp -d -t botfleet-test-redis.XXXXXX)"
    for _attempt in 1 2 3; do
        REDIS_PORT="$(free_port)"
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
            --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" &
        REDIS_PID=$!
        if "$PY" - "$REDIS_PORT" <<'PYEOF'; then break; fi
import sys, time, redis
client = redis.Redis(port=int(sys.argv[1]))
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        sys.exit(0 if client.ping() else 1)
    except redis.ConnectionError:
        time.sleep(0.1)
sys.exit(1)
PYEOF
        kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; REDIS_PID=""
    done
    if [ -z "$REDIS_PID" ]; then log "redis-server did not start; see $REDIS_DIR/redis.log"; exit 1; fi
    export BOTFLEET_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    log "started redis-server on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID, stopped on exit)"
else
    log "using BOTFLEET_TEST_REDIS_URL=$BOTFLEET_TEST_REDIS_URL"
fi

# --- PostgreSQL: the local server when it answers ------------------------------------------
postgres_answers() {
    "$PY" - <<'PYEOF'
import asyncio, sys
import asyncpg
async def main():
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres", timeout=5)
    await conn.close()
try:
    asyncio.run(main())
except Exception as exc:
    print(f"  ({type(exc).__name__}: {exc})", file=sys.stderr)
    sys.exit(1)
PYEOF
}

if [ -z "${BOTFLEET_TEST_POSTGRES_URL:-}" ]; then
    if ! postgres_answers 2>/dev/null && command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters --no-header 2>/dev/null | while read -r version name _rest; do
            log "starting PostgreSQL cluster $version/$name"
            pg_ctlcluster "$version" "$name" start 2>/dev/null || true
        done
    fi
    if postgres_answers; then
        export BOTFLEET_TEST_POSTGRES_URL="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        log "PostgreSQL answers on 127.0.0.1:5432: tests run on SQLite and PostgreSQL"
    else
        log "no PostgreSQL on 127.0.0.1:5432 (user postgres, no password): tests run on SQLite ONLY"
    fi
else
    log "using BOTFLEET_TEST_POSTGRES_URL"
fi

# --- network namespaces: the partition tests cut links at the network level where they can --
if netns_note="$("$PY" -m tests.integration.netns 2>&1)"; then
    log "$netns_note"
else
    log "partition tests will be SKIPPED: $netns_note"
fi

# --- a real systemd host (a VM) for the agent's `systemd --user` path ----------------------
if [ -n "${BOTFLEET_SYSTEMD_VM:-}" ]; then
    log "systemd VM test: image in BOTFLEET_SYSTEMD_VM=$BOTFLEET_SYSTEMD_VM"
elif [ -n "$VM_PID" ]; then
    # Any failure (no root, Debian's mirror unreachable, qemu missing) stops here, with why.
    if ! wait "$VM_PID"; then
        cat "$VM_LOG" >&2
        log "the systemd VM could not be prepared (above); BOTFLEET_TEST_SYSTEMD_VM=0 runs the rest without it"
        exit 1
    fi
    VM_PID=""
    BOTFLEET_SYSTEMD_VM="$(tail -1 "$VM_LOG")"
    export BOTFLEET_SYSTEMD_VM
    rm -f "$VM_LOG"
    log "systemd VM test: image in $BOTFLEET_SYSTEMD_VM"
else
    log "systemd VM test will be SKIPPED (BOTFLEET_TEST_SYSTEMD_VM=0)"
fi

# --- frontend component tests (Vitest) ------------------------------------------------------
status=0
if [ -f frontend/package.json ]; then
    log "running the panel's component tests (vitest)"
    (cd frontend && npm test --silent) || status=$?
fi

# --- pytest (unit, integration, e2e in Chromium) ---------------------------------------------
"$PY" -m pytest -q -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
    log "pytest collected no tests: that is a failure"
    status=1
fi
exit "$status"
