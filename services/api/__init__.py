"""Query API: collectivités read their indicators (Postgres, read-only)."""
