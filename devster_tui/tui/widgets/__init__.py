"""Cockpit widgets: the task table, the log pane and the status bar."""
