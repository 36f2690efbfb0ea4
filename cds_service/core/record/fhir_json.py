"""The FHIR datatypes the rules read, decoded leniently into typed views (clinical-rules.md §1a).

Each resource is decoded once from its slice of the request body into a msgspec Struct holding
only the elements the rules use; everything else in it is skipped, whatever it holds. When the
strict typed decode fails, the same view is built element by element: a bad element the rules do
not need is dropped, a bad element they need is reported so the resource counts as unreadable.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

import msgspec


class Coding(msgspec.Struct, frozen=True, gc=False):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class CodeableConcept(msgspec.Struct, frozen=True, gc=False):
    coding: tuple[Coding, ...] = ()
    text: str | None = None


class Reference(msgspec.Struct, frozen=True, gc=False):
    reference: str | None = None
    display: str | None = None


class Period(msgspec.Struct, frozen=True, gc=False):
    start: str | None = None
    end: str | None = None


class Quantity(msgspec.Struct, frozen=True, gc=False):
    value: float | None = None
    unit: str | None = None
    code: str | None = None


class ResourceView(msgspec.Struct, rename="camel", kw_only=True, gc=False):
    """Base of every typed view: the elements used to place a resource and to name it."""

    resource_type: str
    id: str | None = None
    subject: Reference | None = None
    patient: Reference | None = None

    IDENTIFYING: ClassVar[frozenset[str]] = frozenset()
    """Elements that say whether the resource matters at all (its code): bad -> unreadable."""
    ESSENTIAL: ClassVar[frozenset[str]] = frozenset()
    """Elements the rules need once the resource matters (status, dates): bad -> unreadable."""
    STATUS_CONCEPTS: ClassVar[frozenset[str]] = frozenset()
    """CodeableConcept elements that may arrive as a bare status word (DSTU2 leftovers)."""

    @property
    def ref(self) -> str:
        return f"{self.resource_type}/{self.id}" if self.id else f"{self.resource_type}/(no id)"


V = TypeVar("V", bound=ResourceView)


class Decoded(msgspec.Struct, frozen=True):
    """A typed view and the names of the used elements that could not be read."""

    view: Any
    bad: frozenset[str] = frozenset()


_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError)


class ViewDecoder:
    """Decodes raw slices or dicts into one view type: strict and fast first, lenient on failure."""

    def __init__(self, view_type: type[ResourceView]) -> None:
        self.view_type = view_type
        self._decoder = msgspec.json.Decoder(view_type)
        info = msgspec.inspect.type_info(view_type)
        assert isinstance(info, msgspec.inspect.StructType)
        self._fields = [(f.name, f.encode_name, f.type) for f in info.fields]
        self._types = {f.name: _python_type(view_type, f.name) for f in info.fields}
        self.element_names = frozenset(f.encode_name for f in info.fields)

    def decode(self, item: object, resource_type: str) -> Decoded | None:
        """None when the item is not a resource of `resource_type` (or not JSON at all)."""
        if isinstance(item, msgspec.Raw):
            try:
                view = self._decoder.decode(item)
            except _DECODE_ERRORS:
                try:
                    doc = msgspec.json.decode(item)
                except _DECODE_ERRORS:
                    return None
                return self._lenient(doc, resource_type)
        elif isinstance(item, Mapping):
            try:
                view = msgspec.convert(item, self.view_type, from_attributes=False)
            except _DECODE_ERRORS:
                return self._lenient(item, resource_type)
        else:
            return None
        return Decoded(view) if view.resource_type == resource_type else None

    def _lenient(self, doc: object, resource_type: str) -> Decoded | None:
        if not isinstance(doc, Mapping) or doc.get("resourceType") != resource_type:
            return None
        values: dict[str, Any] = {}
        bad: set[str] = set()
        vt = self.view_type
        for name, encoded, _ in self._fields:
            if encoded not in doc or name == "resource_type":
                continue
            raw = doc[encoded]
            try:
                values[name] = msgspec.convert(raw, self._types[name])
                continue
            except _DECODE_ERRORS:
                pass
            needed = encoded in vt.IDENTIFYING or encoded in vt.ESSENTIAL
            repaired = _repair(raw, self._types[name], as_status=encoded in vt.STATUS_CONCEPTS, whole=needed)
            if repaired is not _BAD:
                values[name] = repaired
            elif needed:
                bad.add(encoded)
        return Decoded(vt(resource_type=resource_type, **values), frozenset(bad))


def _python_type(view_type: type[ResourceView], name: str) -> Any:
    return typing.get_type_hints(view_type)[name]


_BAD: Any = object()


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def repair_coding(value: object) -> Coding | None:
    """A Coding from any object: string-ish members kept, anything else dropped."""
    if not isinstance(value, Mapping):
        return None
    display = value.get("display")
    return Coding(
        _text(value.get("system")),
        _text(value.get("code")),
        display if isinstance(display, str) else None,
    )


def repair_concept(value: object, as_status: bool = False) -> CodeableConcept | Any:
    """A CodeableConcept from a dict with odd members; a bare string only where a status word was
    written as text (DSTU2 era); anything else is not a concept."""
    if isinstance(value, str) and as_status:
        return CodeableConcept(text=value)
    if not isinstance(value, Mapping):
        return _BAD
    codings = value.get("coding")
    items = codings if isinstance(codings, list) else [codings] if isinstance(codings, Mapping) else []
    text = value.get("text")
    return CodeableConcept(
        tuple(c for c in (repair_coding(i) for i in items) if c is not None),
        text if isinstance(text, str) else None,
    )


def _repair(value: object, hint: Any, as_status: bool, whole: bool = False) -> Any:
    """The best reading of one element, or _BAD. `whole`: an element the rules need (a date
    period, an age) is read whole or not at all; only codes and references are read in part."""
    target = hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        target = args[0] if len(args) == 1 else hint
    origin = typing.get_origin(target)
    if target is CodeableConcept:
        return repair_concept(value, as_status)
    if target is Coding:
        return repair_coding(value) or _BAD
    if target is Reference:
        if not isinstance(value, Mapping):
            return _BAD
        ref, display = value.get("reference"), value.get("display")
        return Reference(ref if isinstance(ref, str) else None, display if isinstance(display, str) else None)
    if origin is tuple:  # the views' repeated elements: tuple[X, ...]
        item_type = typing.get_args(target)[0]
        items = value if isinstance(value, list) else [value] if isinstance(value, Mapping) else None
        if items is None:
            return _BAD
        kept = []
        for item in items:
            try:
                kept.append(msgspec.convert(item, item_type))
                continue
            except _DECODE_ERRORS:
                pass
            fixed = _repair(item, item_type, as_status=False)
            if fixed is not _BAD:
                kept.append(fixed)
        return tuple(kept)
    if whole:
        return _BAD
    if isinstance(target, type) and issubclass(target, msgspec.Struct) and isinstance(value, Mapping):
        return _repair_struct(value, target)
    return _BAD


def _repair_struct(value: Mapping[str, Any], target: type[msgspec.Struct]) -> Any:
    hints = typing.get_type_hints(target)
    info = msgspec.inspect.type_info(target)
    assert isinstance(info, msgspec.inspect.StructType)
    values: dict[str, Any] = {}
    for f in info.fields:
        if f.encode_name not in value:
            continue
        try:
            values[f.name] = msgspec.convert(value[f.encode_name], hints[f.name])
        except _DECODE_ERRORS:
            fixed = _repair(value[f.encode_name], hints[f.name], as_status=False)
            if fixed is not _BAD:
                values[f.name] = fixed
    return target(**values)


def concept_texts(concepts: Iterable[CodeableConcept | None]) -> list[str]:
    """`text` and every coding `display` of some concepts, for free-text matching."""
    texts: list[str] = []
    for concept in concepts:
        if concept is None:
            continue
        if concept.text:
            texts.append(concept.text)
        texts.extend(c.display for c in concept.coding if c.display)
    return texts


def concept_label(concept: CodeableConcept | None, fallback: str) -> str:
    """What a clinician would call it: the text, else the first display, else the first code."""
    if concept is None:
        return fallback
    if concept.text and concept.text.strip():
        return concept.text.strip()
    for coding in concept.coding:
        if coding.display and coding.display.strip():
            return coding.display.strip()
    for coding in concept.coding:
        if coding.code and coding.code.strip():
            return coding.code.strip()
    return fallback


def status_words(concept: CodeableConcept | None) -> frozenset[str]:
    """Status codes of a concept, lower-cased; a text-only concept gives its text (§1a)."""
    if concept is None:
        return frozenset()
    codes = frozenset(c.code.strip().lower() for c in concept.coding if c.code and c.code.strip())
    if codes:
        return codes
    return frozenset({concept.text.strip().lower()}) if concept.text and concept.text.strip() else frozenset()


def status_counts(concept: CodeableConcept | None, counting: frozenset[str], known: frozenset[str]) -> bool:
    """Absent counts; otherwise any counting word. Text that is no status word is read as absent."""
    if concept is None:
        return True
    if len(concept.coding) == 1 and concept.coding[0].code in counting:
        return True  # the common case, exactly as written
    words = status_words(concept)
    if not words:
        return True
    if concept is not None and not any(c.code for c in concept.coding) and not words & known:
        return True
    return bool(words & counting)


def patient_named(reference: object) -> str | None:
    """The patient id a reference plainly names ("Patient/x", an absolute URL, a version), or None."""
    if not isinstance(reference, str) or "Patient/" not in reference:
        return None
    return reference.strip().rsplit("Patient/", 1)[1].split("/", 1)[0] or None


def reference_patient(reference: Reference | None) -> str | None:
    return None if reference is None else patient_named(reference.reference)


def _names_other(reference: object, own: str, patient_id: str) -> bool | None:
    """True / False when the reference names another patient / this one; None when it names none.
    The exact "Patient/{id}" most feeds send is answered without splitting the text."""
    if reference == own:
        return False
    named = patient_named(reference)
    return None if named is None else named != patient_id


def belongs_to(view: ResourceView, patient_id: str) -> bool:
    """False only when the resource plainly names another patient (a misrouted prefetch)."""
    if view.resource_type == "Patient":
        return view.id in (None, patient_id)
    own = "Patient/" + patient_id
    for reference in (view.subject, view.patient):
        if (
            reference is not None
            and (other := _names_other(reference.reference, own, patient_id)) is not None
        ):
            return not other
    return True


def json_belongs_to(resource: Mapping[str, Any], patient_id: str) -> bool:
    """`belongs_to` for a resource still as JSON: the demo and the CLI split files by patient with
    the rule the reader applies, so a request they build holds what the service would keep."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id") in (None, patient_id)
    own = "Patient/" + patient_id
    for reference in (resource.get("subject"), resource.get("patient")):
        if (
            isinstance(reference, Mapping)
            and (other := _names_other(reference.get("reference"), own, patient_id)) is not None
        ):
            return not other
    return True


def first(values: Iterable[Any], keep: Callable[[Any], bool] = bool) -> Any:
    return next((v for v in values if keep(v)), None)
