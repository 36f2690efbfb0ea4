"""CDS Hooks "use of JSON": no member is null or empty. A member with no value is omitted."""

from __future__ import annotations

from typing import Any


def prune_empty(value: Any) -> Any:
    """`value` without null, "", [] or {} members, at any depth (a member emptied by pruning goes too).

    False and 0 are values and stay."""
    if isinstance(value, dict):
        pruned = {k: prune_empty(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if not _empty(v)}
    if isinstance(value, list):
        return [v for v in (prune_empty(item) for item in value) if not _empty(v)]
    return value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)
