"""Example handlers shipped with hurtig."""
