"""Domain model: orders, lifecycle, validation, events. Pure: no I/O."""
