"""Identities, credentials, registry tokens and the one authorization decision."""
