"""The Federation server: privacy-preserving federated learning jobs (docs/federation.md)."""
