"""Alembic environment for the meshview-rs schema history.

A plain SQLAlchemy environment: it knows nothing about the application (no model imports,
no autogenerate target) and only needs a database URL, taken from `-x url=...` when given,
otherwise from `sqlalchemy.url` in the ini file.
"""
from logging.config import fileConfig

from sqlalchemy import create_engine, pool

from alembic import context

config = context.config

# Set up Python logging from the ini file, without silencing loggers the caller configured.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# The revisions are written by hand; there is no MetaData to compare against.
target_metadata = None


def database_url() -> str:
    """The URL to migrate: `-x url=...` wins over the ini's `sqlalchemy.url`."""
    x_args = context.get_x_argument(as_dictionary=True)
    url = x_args.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or pass -x url=...")
    return url


def run_migrations_offline() -> None:
    """Emit the migration SQL as text, without connecting to a database."""
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Connect to the database and apply the migrations in one transaction."""
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
