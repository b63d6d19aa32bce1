"""The documented limits of one request to the HTTP service (413 past the body size, 422 past the rest)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ServeLimits:
    """What one request may hold (the documented limits of the HTTP service)."""

    max_request_bytes: int = 4 * 1024 * 1024  # a larger body is a 413 (about 100,000 interactions)
    max_support: int = 1_000  # interactions per user
    max_profile_chars: int = 5_000  # the encoder reads the first few hundred tokens of a profile anyway
    max_users: int = 10_000  # users per /recommend/batch request
    max_items: int = 100_000  # items in /score, and in exclude / candidates lists
    max_k: int = 10_000
    profile_cache: int = 10_000  # profile texts whose vectors are kept in memory (least recently used go)
    batch_wait_ms: float = 2.0  # how long the first of a batch of concurrent requests waits for others (0: no batching)


LIMITS = ServeLimits()
