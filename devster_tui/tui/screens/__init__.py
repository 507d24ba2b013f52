"""Cockpit screens: help, confirmation, stdin, task detail, graph and multi-pane views."""
