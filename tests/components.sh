#!/usr/bin/env bash
# Real components for the docker/ssh tests: installs openssh-server, openssh-client,
# docker.io and busybox-static when missing, starts dockerd, builds devster-busybox:test.
# Idempotent and quick when everything is already there.  Must run as root.
set -uo pipefail

IMAGE="devster-busybox:test"
LOG_DIR="${DEVSTER_COMPONENTS_LOG:-/var/log/devster-components}"
SOCK=/var/run/docker.sock

if [ "$(id -u)" != 0 ]; then
  echo "components.sh: not root, nothing installed" >&2
  exit 0
fi
mkdir -p "$LOG_DIR"

need=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need+=(busybox-static)
# The API engineer's tests: nats-server (event bus) and chromium (web view).
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The end-to-end cockpit tests drive a real terminal.
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v zsh >/dev/null 2>&1 || need+=(zsh)    # tests/test_completion.py drives it
command -v fish >/dev/null 2>&1 || need+=(fish)  # tests/test_completion.py drives it
if [ ${#need[@]} -gt 0 ]; then
  echo "components: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$LOG_DIR/apt.log" 2>&1 || true
  apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$LOG_DIR/apt.log" 2>&1 || {
    echo "components: apt-get install failed (see $LOG_DIR/apt.log)" >&2
  }
fi
# sshd refuses to start without its privilege separation directory.
mkdir -p /run/sshd && chmod 0755 /run/sshd

docker_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if ! docker_up && command -v dockerd >/dev/null 2>&1; then
  if [ -S "$SOCK" ]; then
    rm -f "$SOCK"  # stale socket of a dead daemon
  fi
  echo "components: starting dockerd (log: $LOG_DIR/dockerd.log)"
  # setsid: the daemon outlives this script and the terminal that ran it.
  setsid dockerd --host "unix://$SOCK" >>"$LOG_DIR/dockerd.log" 2>&1 < /dev/null &
  deadline=$((SECONDS + 60))
  until docker_up; do
    if [ $SECONDS -ge $deadline ]; then
      echo "components: dockerd did not come up within 60 s; last log lines:" >&2
      tail -n 20 "$LOG_DIR/dockerd.log" >&2
      break
    fi
    sleep 0.2
  done
fi

if docker_up; then
  if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    busybox=$(command -v busybox || echo /bin/busybox)
    ctx=$(mktemp -d)
    cp "$busybox" "$ctx/busybox"
    cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/var/log", "/root"]
ENV PATH=/bin
CMD ["/bin/sh"]
EOF
    echo "components: building $IMAGE"
    if ! DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$ctx" >"$LOG_DIR/build.log" 2>&1; then
      echo "components: building $IMAGE failed:" >&2
      cat "$LOG_DIR/build.log" >&2
    fi
    rm -rf "$ctx"
  fi
else
  echo "components: no Docker engine; docker tests will skip (or fail under CI=true)" >&2
fi
exit 0
