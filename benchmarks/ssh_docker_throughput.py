"""1,000,000 lines through ssh -> docker exec into devster's output store, against OpenSSH
``ssh host docker exec c gen > file``.

Needs root, sshd and a Docker engine with ``devster-busybox:test`` (tests/components.sh).
Run: ``python3 benchmarks/ssh_docker_throughput.py [--lines N] [--repeat R]``; prints one
JSON line.  The two paths run alternately ``R`` times (the machine is shared and noisy) and
the figures are the medians.  Both timings include the ssh connection and the ``docker
exec``; devster's include no module import (a running engine has imported asyncssh before
its first ssh task; the import costs ~0.17 s once per process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncssh  # noqa: F401  (imported before timing: see the module docstring)

from devster_tui.config.schema import Layer, SshLayer
from devster_tui.executors.base import ProcessSpec, Stream
from devster_tui.executors.layered import build_executor
from devster_tui.executors.local import LocalExecutor
from devster_tui.executors.ssh import SshPool
from devster_tui.state.output import OutputStore
from tests.helpers.sshd import Sshd, keygen, start_sshd

IMAGE = "devster-busybox:test"
LINE = "a line of benchmark output, about sixty bytes long........"


def baseline(server: Sshd, key: Path, known: Path, name: str, gen: list[str], out: Path) -> float:
    """OpenSSH client, docker CLI, into a file: seconds taken."""
    started = time.perf_counter()
    with out.open("wb") as f:
        subprocess.run(
            [
                "ssh",
                "-T",
                "-i",
                str(key),
                "-p",
                str(server.port),
                "-o",
                f"UserKnownHostsFile={known}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "root@127.0.0.1",
                # One string: ssh joins its arguments with spaces for the remote shell.
                shlex.join(["docker", "exec", name, *gen]),
            ],
            stdout=f,
            check=True,
        )
    return time.perf_counter() - started


async def devster(
    server: Sshd, key: Path, known: Path, name: str, gen: list[str], logs: Path
) -> tuple[float, float, int]:
    """devster's ssh -> docker exec chain into an output store: (seconds, CPU seconds, lines)."""
    store = OutputStore(logs, memory_lines=10000)
    pool = SshPool()
    layer = SshLayer(
        host="127.0.0.1",
        port=server.port,
        user="root",
        identity=str(key),
        known_hosts=str(known),
        agent=False,
        use_ssh_config=False,
    )
    executor = build_executor(
        [Layer(ssh=layer), Layer.model_validate({"docker": {"container": name}})],
        local=LocalExecutor(guard=False),
        pool=pool,
        project="bench",
        root=logs,
    )

    def on_output(stream: Stream, chunk: bytes) -> None:
        store.append("bench", stream, chunk, 1)

    t0 = time.perf_counter()
    c0 = time.process_time()
    proc = await executor.spawn(
        ProcessSpec(task="bench", argv=gen, env={}, cwd="/"),
        on_output,
        lambda s: store.finish("bench", s),
    )
    await proc.wait()
    took = time.perf_counter() - t0
    cpu = time.process_time() - c0
    count, nbytes = store.stats("bench")
    if nbytes != count * (len(LINE) + 1):
        raise SystemExit(f"devster stored {nbytes} bytes for {count} lines")
    await pool.aclose()
    store.close()
    return took, cpu, count


def main() -> int:
    """Measure both paths and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lines: int = args.lines
    gen = ["sh", "-c", f"yes '{LINE}' | head -n {lines}"]
    tmp = Path(tempfile.mkdtemp(prefix="devster-bench-"))
    key = keygen(tmp / "client_key")
    server = start_sshd(tmp / "sshd", key)
    known = tmp / "known_hosts"
    known.write_text(server.known_hosts_line)
    name = f"devster-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, IMAGE, "sleep", "100000"],
        check=True,
        capture_output=True,
    )
    base_s: list[float] = []
    dev_s: list[float] = []
    dev_cpu: list[float] = []
    try:
        for i in range(max(1, args.repeat)):
            out = tmp / f"baseline-{i}.out"
            base_s.append(baseline(server, key, known, name, gen, out))
            got = out.read_bytes()
            out.unlink()
            if got != f"{LINE}\n".encode() * lines:
                raise SystemExit(f"baseline produced {len(got)} bytes, not {lines} lines")
            took, cpu, count = asyncio.run(devster(server, key, known, name, gen, tmp / f"l{i}"))
            if count != lines:
                raise SystemExit(f"devster stored {count} lines, not {lines}")
            dev_s.append(took)
            dev_cpu.append(cpu)
        base = statistics.median(base_s)
        dev = statistics.median(dev_s)
        result = {
            "lines": lines,
            "repeat": len(base_s),
            "baseline_s": round(base, 3),
            "baseline_lines_per_s": round(lines / base),
            "devster_s": round(dev, 3),
            "devster_cpu_s": round(statistics.median(dev_cpu), 3),
            "devster_lines_per_s": round(lines / dev),
            "ratio": round(base / dev, 3),
            "baseline_runs_s": [round(x, 3) for x in base_s],
            "devster_runs_s": [round(x, 3) for x in dev_s],
        }
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        server.kill_all()


if __name__ == "__main__":
    sys.exit(main())
