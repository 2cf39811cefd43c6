"""The Federation server's gRPC front: servicer and converters (the servicer is not built yet: docs/federation.md)."""
