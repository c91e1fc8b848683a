"""The durable job queue (in the database, SQLite or PostgreSQL) and its workers."""
