"""Read side: the tiers that answer status reads."""
