"""Compile-check src/ and copy it to build/ (exit 1 on a syntax error: the server keeps running)."""

import py_compile
import shutil
import sys
from pathlib import Path

src, out = Path("src"), Path("build")
for file in sorted(src.glob("*.py")):
    try:
        py_compile.compile(str(file), doraise=True)
    except py_compile.PyCompileError as exc:
        sys.stderr.write(f"build failed: {exc.msg}\n")
        sys.exit(1)
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(src, out, ignore=shutil.ignore_patterns("__pycache__"))
sys.stdout.write(f"built {len(list(out.glob('*.py')))} files\n")
