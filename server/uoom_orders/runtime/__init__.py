"""Primitives every long-running part shares: background tasks and the retry policy."""
