"""Executors: where a task runs (local, docker, ssh and layered chains of them)."""
