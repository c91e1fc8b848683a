"""Namespaces and repositories: the records a push lands in."""
