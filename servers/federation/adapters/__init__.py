"""What the Federation server's domain talks to (PostgreSQL, the Registry, job processes); not built yet (docs/federation.md)."""
