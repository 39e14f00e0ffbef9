"""The `fabric` CLI: az-style commands over the gRPC API."""
