//! alembic.ini (and pyproject.toml `[tool.alembic]`) read with Python ConfigParser semantics.
