"""SQLAlchemy models and Alembic migrations of the cgdw warehouse."""
