"""The shared cache (our Solid Cache): JSON values with a TTL in an UNLOGGED PostgreSQL table."""
