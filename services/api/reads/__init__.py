"""What the API reads from Postgres: the SQL (SQLAlchemy Core) and the
connections that run it, one module per family of routes. Nothing here
knows HTTP; the routes (``routes/``) call these and answer."""
