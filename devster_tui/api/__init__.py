"""The control API: an HTTP + JSON server on a Unix socket (and optional TCP), and its clients."""
