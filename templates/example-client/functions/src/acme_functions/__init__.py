"""ACME's functions for hurtig (an example client package)."""
