"""Metadata: engine, tables and migrations (SQLite by default, PostgreSQL supported)."""
