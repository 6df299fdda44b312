"""Application layer: command handlers and read queries, over ports."""
