"""Build job: copy src/*.py into build/ and write build/BUILD_INFO (the files and a time)."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Copy the sources; exit 1 if one does not compile."""
    src, out = HERE / "src", HERE / "build"
    out.mkdir(exist_ok=True)
    files = sorted(src.glob("*.py"))
    for path in files:
        try:
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
        except SyntaxError as exc:
            print(f"build failed: {path.name}:{exc.lineno}: {exc.msg}", file=sys.stderr)
            return 1
        shutil.copy2(path, out / path.name)
        print(f"built {path.name}")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    names = " ".join(p.name for p in files)
    (out / "BUILD_INFO").write_text(f"{stamp} {names}\n", encoding="utf-8")
    print(f"build done: {len(files)} file(s) at {stamp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
