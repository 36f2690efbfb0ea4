"""CDS Hooks "use of JSON": no member is null or empty. A member with no value is omitted."""

from __future__ import annotations

from typing import Any


def prune_empty(value: Any) -> Any:
    """`value` without null, "", [] or {} members, at any depth (a member emptied by pruning goes too).

    False and 0 are values and stay. Scalars are never descended into (one pass per container)."""
    if isinstance(value, dict):
        kept = {}
        for key, member in value.items():
            if isinstance(member, dict | list):
                member = prune_empty(member)
            if not _empty(member):
                kept[key] = member
        return kept
    if isinstance(value, list):
        items = (prune_empty(item) if isinstance(item, dict | list) else item for item in value)
        return [item for item in items if not _empty(item)]
    return value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)
