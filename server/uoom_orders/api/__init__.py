"""gRPC entry point: servicer, error mapping, server."""
