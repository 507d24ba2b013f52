#!/usr/bin/env bash
# Stop the prod-tail stand-ins started by start.sh.
here=$(cd "$(dirname "$0")" && pwd)
for port in 2201 2202; do
  pid=$(cat "$here/state/sshd-$port/sshd.pid" 2>/dev/null) && kill "$pid" 2>/dev/null
done
docker rm -f devster-prod-tail-app >/dev/null 2>&1 || true
