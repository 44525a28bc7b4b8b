"""Feature block `professional` — placeholder until its issue lands (returns no features)."""

from __future__ import annotations

FEATURES: dict[str, str] = {}


def build(ctx):
    """Feature block entry point (see ``features.assemble.BLOCKS``)."""
    return None, FEATURES
