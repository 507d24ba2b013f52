"""Clients of the engine's stores that run beside it: the headless printer and the event bus.

Why apart from ``engine/``: the engine supervises and formats nothing; these read its state
and output (they subscribe to the store like the TUI does) and never touch executors.  The
engine never imports them; ``commands`` and the API host start them.
"""
