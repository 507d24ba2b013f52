"""Control API: the engine's Unix-socket server and its client."""
