"""1,000,000 lines through ssh -> docker exec into devster's output store, against OpenSSH
``ssh host docker exec c gen > file``.

Needs root, sshd and a Docker engine with ``devster-busybox:test`` (tests/components.sh).
Run: ``python3 benchmarks/ssh_docker_throughput.py [LINES]``; prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devster_tui.config.schema import Layer, SshLayer
from devster_tui.executors.base import ProcessSpec, Stream
from devster_tui.executors.layered import build_executor
from devster_tui.executors.local import LocalExecutor
from devster_tui.executors.ssh import SshPool
from devster_tui.state.output import OutputStore
from tests.helpers.sshd import keygen, start_sshd

IMAGE = "devster-busybox:test"


def main() -> int:
    """Measure both paths and print the figures."""
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    script = f"yes 'a line of benchmark output, about sixty bytes long........' | head -n {lines}"
    gen = ["sh", "-c", script]
    tmp = Path(tempfile.mkdtemp(prefix="devster-bench-"))
    key = keygen(tmp / "client_key")
    server = start_sshd(tmp / "sshd", key)
    known = tmp / "known_hosts"
    known.write_text(server.known_hosts_line)
    name = f"devster-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "run", "-d", "--name", name, IMAGE, "sleep", "100000"], check=True)
    try:
        # Baseline: OpenSSH client, docker CLI, into a file.
        out = tmp / "baseline.out"
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
                    "docker",
                    "exec",
                    name,
                    *gen,
                ],
                stdout=f,
                check=True,
            )
        baseline = time.perf_counter() - started
        baseline_lines = out.read_bytes().count(b"\n")

        async def devster() -> tuple[float, int]:
            store = OutputStore(tmp / "logs", memory_lines=10000)
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
                root=tmp,
            )

            def on_output(stream: Stream, chunk: bytes) -> None:
                store.append("bench", stream, chunk, 1)

            t0 = time.perf_counter()
            proc = await executor.spawn(
                ProcessSpec(task="bench", argv=gen, env={}, cwd="/"),
                on_output,
                lambda s: store.finish("bench", s),
            )
            await proc.wait()
            took = time.perf_counter() - t0
            count = sum(1 for _ in store.tail("bench", "stdout", 10**7))
            await pool.aclose()
            store.close()
            return took, count

        took, _kept = asyncio.run(devster())
        log_lines = sum(
            p.read_bytes().count(b"\n") for p in (tmp / "logs").rglob("*") if p.is_file()
        )
        result = {
            "lines": lines,
            "baseline_s": round(baseline, 3),
            "baseline_lines_per_s": round(baseline_lines / baseline),
            "devster_s": round(took, 3),
            "devster_lines_per_s": round(lines / took),
            "ratio": round(baseline / took, 3),
            "devster_log_lines": log_lines,
        }
        print(json.dumps(result))
        return 0
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        server.kill_all()


if __name__ == "__main__":
    sys.exit(main())
