"""CDS Hooks "use of JSON": no member is null or empty. A member with no value is omitted."""

from __future__ import annotations

from typing import Any


def prune_empty(value: Any) -> Any:
    """`value` without null, "", [] or {} members, at any depth (a member emptied by pruning goes too).

    False and 0 are values and stay. Scalars are never descended into (one pass per container)."""
    if isinstance(value, dict):
        kept = {}
        for key, member in value.items():
            if member is None or member == "":
                continue
            if isinstance(member, dict | list):
                member = prune_empty(member)
                if not member:
                    continue
            kept[key] = member
        return kept
    if isinstance(value, list):
        items = []
        for item in value:
            if item is None or item == "":
                continue
            if isinstance(item, dict | list):
                item = prune_empty(item)
                if not item:
                    continue
            items.append(item)
        return items
    return value
