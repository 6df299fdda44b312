"""Versioned SQL migrations of the write model, applied in file-name order."""
