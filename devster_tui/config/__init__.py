"""Configuration: the YAML/Python project file turned into a validated, frozen model."""
