"""A FHIR resource as received: the few fields the scan reads, the rest parsed only on demand.

A hook call may carry thousands of resources of which a handful matter. Decoding every one in
full costs about 17x the body in memory and most of the time; msgspec decodes only the fields
named in `ScannedFields` from a zero-copy slice of the request body (`msgspec.Raw`) and skips the
rest, and `full()` parses the whole resource only for those the rules keep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

import msgspec
import orjson

_COMMON = ("resourceType", "id", "subject", "patient")
# The fields each type's scan reads before deciding whether the resource matters; everything else
# (dates, statuses read from the validated model) comes from the full parse of the few kept.
SCANNED_FIELDS: dict[str, tuple[str, ...]] = {
    "Patient": ("resourceType", "id"),
    "Condition": (*_COMMON, "code"),
    "ImagingStudy": (*_COMMON, "status", "description", "series", "procedureCode", "reasonCode"),
    "MedicationRequest": (
        *_COMMON,
        "status",
        "medicationCodeableConcept",
        "medicationReference",
        "contained",
    ),
    "MedicationStatement": (
        *_COMMON,
        "status",
        "medicationCodeableConcept",
        "medicationReference",
        "contained",
    ),
    "AllergyIntolerance": (*_COMMON, "clinicalStatus", "verificationStatus", "code", "reaction"),
    "Procedure": (*_COMMON, "status", "code"),
    "ServiceRequest": (*_COMMON, "status", "code"),
}


def _decoder(fields: tuple[str, ...]) -> msgspec.json.Decoder[Any]:
    shape = TypedDict("Scanned", dict.fromkeys(fields, Any), total=False)  # type: ignore[misc]
    return msgspec.json.Decoder(shape)


_DECODERS = {name: _decoder(fields) for name, fields in SCANNED_FIELDS.items()}
_ANY_TYPE = _decoder(tuple(dict.fromkeys(f for fields in SCANNED_FIELDS.values() for f in fields)))
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError)


class Resource:
    __slots__ = ("_full", "_raw", "light")

    def __init__(
        self, light: Mapping[str, Any], raw: msgspec.Raw | None, full: Mapping[str, Any] | None
    ) -> None:
        self.light = light
        self._raw = raw
        self._full = full

    @classmethod
    def from_dict(cls, resource: Mapping[str, Any]) -> Resource:
        return cls(resource, None, resource)

    @classmethod
    def from_raw(cls, raw: msgspec.Raw, expected_type: str | None = None) -> Resource | None:
        """None when the slice is not a JSON object (or is nested beyond reason). Naming the
        expected type decodes only that type's scanned fields."""
        decoder = _DECODERS.get(expected_type, _ANY_TYPE) if expected_type else _ANY_TYPE
        try:
            return cls(decoder.decode(raw), raw, None)
        except _DECODE_ERRORS:
            return None

    @property
    def resource_type(self) -> Any:
        return self.light.get("resourceType")

    def full(self) -> Mapping[str, Any] | None:
        """The whole resource as a dict (parsed once); None if it cannot be parsed."""
        if self._full is None and self._raw is not None:
            try:
                parsed = orjson.loads(memoryview(self._raw))
            except (orjson.JSONDecodeError, RecursionError, UnicodeDecodeError):
                return None
            self._full = parsed if isinstance(parsed, dict) else None
            self._raw = None
        return self._full


def as_resource(item: object) -> Resource | None:
    """Tolerate plain dicts (tests, fetched pages) beside decoded views."""
    if isinstance(item, Resource):
        return item
    if isinstance(item, Mapping):
        return Resource.from_dict(item)
    return None
