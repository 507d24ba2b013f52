#!/usr/bin/env bash
# Local stand-ins for the prod-tail example: two sshd (bastion :2201, app host :2202) and a
# container that writes /var/log/app.log.  Needs root, sshd, Docker and the image built by
# tests/components.sh (devster-busybox:test).  Stop them with stand-ins/stop.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state="$here/state"
mkdir -p "$state" /run/sshd
[ -f "$state/client_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$state/client_key"
: > "$state/known_hosts"
for port in 2201 2202; do
  d="$state/sshd-$port"; mkdir -p "$d"
  [ -f "$d/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
  cp "$state/client_key.pub" "$d/authorized_keys"
  cat > "$d/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $d/host_key
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
StrictModes no
PasswordAuthentication no
PermitRootLogin yes
UsePAM no
AllowTcpForwarding yes
CFG
  /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log"
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$d/host_key.pub")" >> "$state/known_hosts"
done
docker rm -f devster-prod-tail-app >/dev/null 2>&1 || true
docker run -d --name devster-prod-tail-app devster-busybox:test sh -c \
  'i=0; while :; do i=$((i+1)); lvl=INFO; [ $((i % 5)) = 0 ] && lvl=ERROR;
   echo "$(date) $lvl request $i" >> /var/log/app.log; sleep 1; done' >/dev/null
echo "stand-ins up: bastion 127.0.0.1:2201, app host 127.0.0.1:2202, container devster-prod-tail-app"
