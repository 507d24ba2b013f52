"""Watchers: file observers built on watchfiles."""
