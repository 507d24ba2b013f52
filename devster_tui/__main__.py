"""Entry point for ``python -m devster_tui``."""

from __future__ import annotations

from devster_tui.cli import main

raise SystemExit(main())
