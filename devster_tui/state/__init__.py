"""State core: events, the pure reducer, the store, the event log and the output store."""
