# Shared by scripts/run.sh and scripts/test.sh (sourced, from the repository root).
# Each step is a fast no-op when its work is already done, so the scripts can run every time.

log() { printf '==> %s\n' "$*" >&2; }

# apt-get install PACKAGES (as root, or with sudo -n), non-interactively; update the lists once.
apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
            log "missing $* and not root: install them with apt-get"; return 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "missing $* and no apt-get: install them with your package manager"; return 1
    fi
    log "installing Debian packages: $*"
    if [ -z "${BOTFLEET_APT_UPDATED:-}" ]; then
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        BOTFLEET_APT_UPDATED=1
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "$@" >/dev/null
}

# Install the PACKAGE of every BINARY:PACKAGE pair whose binary is not on PATH.
ensure_debian_packages() {
    local pair missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

# A Python >= 3.11 interpreter on PATH.
find_python() {
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    log "botfleet needs Python 3.11 or newer (apt-get install python3)"
    return 1
}

# .venv with botfleet installed editable with EXTRAS (e.g. "server,test"); reinstalls only
# when pyproject.toml changed since the last install with these extras.
ensure_venv() {
    local extras="$1" python
    if [ ! -x .venv/bin/python ]; then
        python="$(find_python)"
        log "creating .venv with $python"
        if ! "$python" -m venv .venv; then
            rm -rf .venv
            apt_install python3-venv
            "$python" -m venv .venv
        fi
    fi
    local stamp=".venv/.botfleet-installed-${extras//,/-}"
    local want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! .venv/bin/python -c 'import botfleet' 2>/dev/null; then
        log "installing botfleet[$extras] into .venv"
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
        echo "$want" >"$stamp"
    fi
}

# npm ci in frontend/ when it has a package.json and its node_modules is older than the lock.
ensure_frontend_deps() {
    [ -f frontend/package.json ] || return 0
    if [ ! -f frontend/node_modules/.package-lock.json ] ||
        [ frontend/package-lock.json -nt frontend/node_modules/.package-lock.json ]; then
        log "installing the frontend's npm packages"
        (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# Build frontend/dist when a source file is newer than the last build.
build_frontend() {
    [ -f frontend/package.json ] || return 0
    ensure_frontend_deps
    if [ ! -f frontend/dist/index.html ] || [ -n "$(find frontend \
        \( -path frontend/node_modules -o -path frontend/dist \) -prune -o \
        -type f -newer frontend/dist/index.html -print -quit)" ]; then
        log "building the web panel"
        (cd frontend && npm run build --silent)
    fi
}
