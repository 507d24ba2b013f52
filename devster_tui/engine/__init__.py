"""Engine: the supervisor that runs tasks and turns everything that happens into events."""
