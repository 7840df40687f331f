#!/usr/bin/env bash
# Benchmarks of issue 2: botfleet vs Supervisor 4.3 vs PM2 7 on this machine.
#   scripts/bench/run.sh all|fleet|start|stop|idle|crash|latency|flood|jobs [--tools a,b] [--quick]
# and of issue 3 (remote hosts, simulated VPSes; root for network namespaces):
#   scripts/bench/run.sh remote [--hosts 20] [--samples 3] [--mode auto|netns|loopback]
# Installs the anchors into throw-away prefixes under $BENCH_TMP (default /tmp/botfleet-bench)
# when missing; results go to scripts/bench/results/*.json and a table is printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BENCH_TMP="${BENCH_TMP:-/tmp/botfleet-bench}"
export BENCH_TMP
mkdir -p "$BENCH_TMP"

source scripts/venv.sh
if [ ! -x .venv/bin/python ]; then
  ensure_venv server
fi
# This sandbox sets PYTHONDONTWRITEBYTECODE=1; a real host caches bytecode, so every Python
# start (bots and supervisors alike) would recompile modules here. Unset it and compile once.
unset PYTHONDONTWRITEBYTECODE
.venv/bin/python -m compileall -q backend/botfleet >/dev/null || true

if [ "${1:-}" = remote ]; then   # issue 3: simulated VPSes (real sshds), no anchors needed
  shift
  ensure_debian_packages sshd:openssh-server
  exec .venv/bin/python scripts/bench/remote.py "$@"
fi
if [ ! -x "$BENCH_TMP/supervisor/bin/supervisord" ]; then
  echo "installing supervisor 4.3 into $BENCH_TMP/supervisor" >&2
  python3 -m venv "$BENCH_TMP/supervisor"
  "$BENCH_TMP/supervisor/bin/pip" install -q "supervisor==4.3.*"
fi
if [ ! -x "$BENCH_TMP/pm2/node_modules/.bin/pm2" ]; then
  echo "installing pm2 7 into $BENCH_TMP/pm2" >&2
  npm install --silent --prefix "$BENCH_TMP/pm2" "pm2@7"
fi
export PM2_HOME="$BENCH_TMP/pm2-home-unused"   # each run sets its own; never ~/.pm2
exec .venv/bin/python scripts/bench/bench.py "$@"
