"""Service tests of events and jobs run on both databases (``tests/db``'s fixtures)."""

from tests.db.conftest import database, database_url

__all__ = ["database", "database_url"]
