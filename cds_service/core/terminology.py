"""Value sets compiled once into lookups keyed by (system, normalised code).

The clinical content lives in `cards/` as reviewed JSON files; this module only
knows how to read and query them, so a change of codes never touches Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Literal

import orjson

from cds_service.core.rules.report_text import load_report_terms

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"

Etiology = Literal["osteoporotic", "pathologic", "unspecified"]
Kind = Literal["absolute", "relative", "not-advised"]
Corroboration = Literal["spine", "thoracolumbar"]

LEVELS: tuple[str, ...] = tuple(f"T{n}" for n in range(1, 13)) + tuple(f"L{n}" for n in range(1, 6))
_LEVEL_ORDER = {level: index for index, level in enumerate(LEVELS)}
THORACOLUMBAR_REGIONS = frozenset({"thoracic", "thoracolumbar", "lumbar", "lumbosacral"})


def normalise_code(code: str) -> str:
    """Codes compare upper-cased without dots or surrounding blanks (M80.08XA = m8008xa)."""
    return code.strip().upper().replace(".", "")


def level_sort_key(level: str | None) -> int:
    """Cranial to caudal; unknown last."""
    return _LEVEL_ORDER.get(level, len(LEVELS)) if level else len(LEVELS)


def region_of_level(level: str) -> str:
    return "thoracic" if level.startswith("T") else "lumbar"


@dataclass(frozen=True)
class TriggerRule:
    """One way a code can start a fracture; a value set lists alternatives, first match wins."""

    etiology: Etiology
    requires: str | None = None
    unless: str | None = None
    corroboration: Corroboration | None = None


@dataclass(frozen=True)
class ContraindicationRule:
    code: str
    kind: Kind
    stale_after_days: int | None = None
    warning: bool = False


@dataclass(frozen=True)
class CodeMeaning:
    """What a code (or all codings of one CodeableConcept) means to the rules."""

    concepts: frozenset[str]
    level: str | None = None
    region: str | None = None
    modality: str | None = None

    def merge(self, other: CodeMeaning | None) -> CodeMeaning:
        if other is None:
            return self
        return CodeMeaning(
            self.concepts | other.concepts,
            self.level or other.level,
            self.region or other.region,
            self.modality or other.modality,
        )

    @property
    def is_spine(self) -> bool:
        return "spine-body-site" in self.concepts or self.level is not None

    @property
    def is_thoracolumbar(self) -> bool:
        return self.level is not None or (self.region in THORACOLUMBAR_REGIONS)


@dataclass(frozen=True)
class ValueSet:
    id: str
    title: str
    sources: tuple[str, ...]
    triggers: tuple[TriggerRule, ...] = ()
    contraindication: ContraindicationRule | None = None
    text_patterns: tuple[re.Pattern[str], ...] = ()
    applies_to: frozenset[str] = frozenset()
    """Resource types whose free text is matched against text_patterns."""
    augmentation: bool = False


@dataclass(frozen=True)
class ClinicalParameters:
    future_tolerance_days: int
    imaging_lookback_days: int
    acuity_modalities: frozenset[str]
    modality_system: str
    multiple_levels: ContraindicationRule
    multiple_levels_more_than: int
    malignancy_on_record: ContraindicationRule
    malignancy_valueset: str
    imaging_chronic: ContraindicationRule
    imaging_discordant: ContraindicationRule
    radiology_report_concepts: frozenset[str]
    counting_report_status: frozenset[str]
    report_text_limit: int
    report_modalities: Mapping[str, str]
    counting_clinical_status: frozenset[str]
    counting_verification_status: frozenset[str]
    excluded_study_status: frozenset[str]
    counting_medication_status: frozenset[str]
    counting_procedure_status: frozenset[str]
    counting_service_request_status: frozenset[str]
    counting_allergy_clinical_status: frozenset[str]
    excluded_allergy_verification_status: frozenset[str]
    clinical_status_words: frozenset[str]
    verification_status_words: frozenset[str]
    supporting_study_status: frozenset[str]
    supporting_with_series_study_status: frozenset[str]


def _glob_to_regex(pattern: str) -> str:
    body = "".join(
        "." if ch == "?" else ".*" if ch == "*" else re.escape(ch) for ch in normalise_code(pattern)
    )
    return f"(?:{body})"


@dataclass(frozen=True)
class SiteValueSetFile:
    """What one site file added to one shipped value set, and who says so (its `sources`)."""

    file: str
    valueset_id: str
    sources: tuple[str, ...]
    codes: int
    patterns: int
    texts: int


@dataclass
class Terminology:
    """All value sets, queryable by (system, code) in O(1) after the first sight of a code."""

    valuesets: Mapping[str, ValueSet]
    parameters: ClinicalParameters
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Other names of the code systems the value sets use (HL7 OIDs, §1a)."""
    region_words: tuple[tuple[str, str], ...] = ()
    """Free-text words naming a spine region, most specific first."""
    report_terms: Any = None
    """The §7 report-text term lists (cards/report-terms.json), compiled once."""
    site_files: tuple[SiteValueSetFile, ...] = ()
    """Site value-set files (CDS_VALUESET_DIR) that extended the shipped sets, in load order."""
    _exact: dict[tuple[str, str], CodeMeaning] = field(default_factory=dict)
    _patterns: dict[str, list[tuple[re.Pattern[str], CodeMeaning]]] = field(default_factory=dict)
    _cache: dict[tuple[str, str], CodeMeaning | None] = field(default_factory=dict)
    _level_codings: dict[str, tuple[str, str]] = field(default_factory=dict)
    text_meanings: dict[tuple[str, bool], CodeMeaning | None] = field(default_factory=dict)
    """What free texts (study descriptions, body-site words) were read to mean, kept across calls:
    a site's records repeat the same few texts. Filled by the reader, bounded there."""

    _CACHE_LIMIT = 200_000

    def add_code(self, system: str, code: str, meaning: CodeMeaning) -> None:
        key = (system, normalise_code(code))
        self._exact[key] = meaning.merge(self._exact.get(key))

    def add_pattern(self, system: str, pattern: str, meaning: CodeMeaning) -> None:
        compiled = re.compile(_glob_to_regex(pattern))
        self._patterns.setdefault(system, []).append((compiled, meaning))

    def meaning(self, system: object, code: object) -> CodeMeaning | None:
        """Meaning of one coding; unknown systems, odd types and unknown codes give None."""
        if not isinstance(system, str) or not isinstance(code, str):
            return None
        key = (system, code)
        try:
            return self._cache[key]
        except KeyError:
            pass
        normalised = normalise_code(code)
        system = system.strip()
        system = self.aliases.get(system, system)
        found = self._exact.get((system, normalised))
        for compiled, meaning in self._patterns.get(system, ()):
            if compiled.fullmatch(normalised):
                found = meaning.merge(found) if found else meaning
        if len(self._cache) < self._CACHE_LIMIT:
            self._cache[key] = found
        return found

    def meaning_of_concept(self, concept: Any) -> CodeMeaning | None:
        """Merged meaning of a typed CodeableConcept's codings. The reader asks this of every coded
        resource, most of them unknown codes already seen: those are answered from the cache here."""
        if concept is None:
            return None
        cache = self._cache
        merged: CodeMeaning | None = None
        for coding in concept.coding:
            try:
                found = cache[(coding.system, coding.code)]
            except KeyError:
                found = self.meaning(coding.system, coding.code)
            if found is not None:
                merged = found.merge(merged)
        return merged

    def text_matches(self, valueset_id: str, text: str) -> bool:
        return any(p.search(text) for p in self.valuesets[valueset_id].text_patterns)

    def text_concepts(self, resource_type: str, texts: Iterable[str]) -> frozenset[str]:
        """Value sets that apply to this resource type and whose text patterns match any text."""
        joined = " ".join(texts)
        if not joined:
            return frozenset()
        return frozenset(
            vs.id
            for vs in self.valuesets.values()
            if resource_type in vs.applies_to and any(p.search(joined) for p in vs.text_patterns)
        )

    def level_coding(self, level: str) -> tuple[str, str] | None:
        """The (system, code) of a vertebra level in the spine body-site value set (T1-L5)."""
        if not self._level_codings:
            for (system, code), meaning in self._exact.items():
                if meaning.level and "spine-body-site" in meaning.concepts:
                    self._level_codings.setdefault(meaning.level, (system, code))
        return self._level_codings.get(level)

    def is_augmentation(self, concepts: Iterable[str]) -> bool:
        return any(self.valuesets[vs_id].augmentation for vs_id in concepts)

    def triggers(self, concepts: Iterable[str]) -> list[TriggerRule]:
        return [rule for vs_id in sorted(concepts) for rule in self.valuesets[vs_id].triggers]

    def contraindication_rules(self, concepts: Iterable[str]) -> list[ContraindicationRule]:
        rules = (self.valuesets[vs_id].contraindication for vs_id in sorted(concepts))
        return [rule for rule in rules if rule is not None]


def _parse_valueset(doc: Mapping[str, Any]) -> tuple[ValueSet, list[tuple[str, str, bool, CodeMeaning]]]:
    vs_id = str(doc["id"])
    triggers = tuple(
        TriggerRule(
            etiology=t["etiology"],
            requires=t.get("requires"),
            unless=t.get("unless"),
            corroboration=t.get("corroboration"),
        )
        for t in doc.get("trigger", ())
    )
    ci = doc.get("contraindication")
    rule = (
        ContraindicationRule(ci["code"], ci["kind"], ci.get("staleAfterDays"), bool(ci.get("warning", False)))
        if ci
        else None
    )
    text = doc.get("text", {})
    patterns = tuple(re.compile(p, re.IGNORECASE) for p in text.get("include", ()))
    entries: list[tuple[str, str, bool, CodeMeaning]] = []
    for part in doc.get("compose", ()):
        system = part["system"]
        for item, is_pattern in [(c, False) for c in part.get("concepts", ())] + [
            (p, True) for p in part.get("patterns", ())
        ]:
            meaning = CodeMeaning(
                frozenset({vs_id}), item.get("level"), item.get("region"), item.get("modality")
            )
            entries.append((system, item["pattern" if is_pattern else "code"], is_pattern, meaning))
    valueset = ValueSet(
        vs_id,
        str(doc["title"]),
        tuple(doc.get("sources", ())),
        triggers,
        rule,
        patterns,
        frozenset(doc.get("appliesTo", ())),
        bool(doc.get("augmentation", False)),
    )
    return valueset, entries


def _parse_parameters(doc: Mapping[str, Any]) -> ClinicalParameters:
    ml = doc["multipleLevels"]
    return ClinicalParameters(
        future_tolerance_days=int(doc["futureToleranceDays"]),
        imaging_lookback_days=int(doc["imagingLookbackDays"]),
        acuity_modalities=frozenset(doc["acuityModalities"]),
        modality_system=str(doc["modalitySystem"]),
        multiple_levels=ContraindicationRule(ml["code"], ml["kind"]),
        multiple_levels_more_than=int(ml["moreThan"]),
        malignancy_on_record=ContraindicationRule(
            doc["malignancyOnRecord"]["code"], doc["malignancyOnRecord"]["kind"]
        ),
        malignancy_valueset=str(doc["malignancyOnRecord"]["valueSet"]),
        imaging_chronic=ContraindicationRule(doc["imagingChronic"]["code"], doc["imagingChronic"]["kind"]),
        imaging_discordant=ContraindicationRule(
            doc["imagingDiscordant"]["code"], doc["imagingDiscordant"]["kind"]
        ),
        radiology_report_concepts=frozenset(doc["radiologyReportValueSets"]),
        counting_report_status=frozenset(doc["countingReportStatus"]),
        report_text_limit=int(doc["reportTextLimit"]),
        report_modalities={str(k): str(v) for k, v in doc["reportModalities"].items()},
        counting_clinical_status=frozenset(doc["countingClinicalStatus"]),
        counting_verification_status=frozenset(doc["countingVerificationStatus"]),
        excluded_study_status=frozenset(doc["excludedStudyStatus"]),
        counting_medication_status=frozenset(doc["countingMedicationStatus"]),
        counting_procedure_status=frozenset(doc["countingProcedureStatus"]),
        counting_service_request_status=frozenset(doc["countingServiceRequestStatus"]),
        counting_allergy_clinical_status=frozenset(doc["countingAllergyClinicalStatus"]),
        excluded_allergy_verification_status=frozenset(doc["excludedAllergyVerificationStatus"]),
        clinical_status_words=frozenset(doc["clinicalStatusWords"]),
        verification_status_words=frozenset(doc["verificationStatusWords"]),
        supporting_study_status=frozenset(doc["supportingStudyStatus"]),
        supporting_with_series_study_status=frozenset(doc["supportingWithSeriesStudyStatus"]),
    )


def load_terminology(
    folder: Traversable | None = None, site_folder: Traversable | None = None
) -> Terminology:
    """Read every value set and the parameters file, then the site's extensions (CDS_VALUESET_DIR)
    when given; done once at app start, never per request."""
    root = folder if folder is not None else files("cds_service.cards")
    parameters_doc = orjson.loads((root / "parameters.json").read_bytes())
    parameters = _parse_parameters(parameters_doc)
    systems = orjson.loads((root / "code-systems.json").read_bytes())
    valuesets: dict[str, ValueSet] = {}
    terminology = Terminology(
        valuesets,
        parameters,
        aliases={str(k): str(v) for k, v in systems["aliases"].items()},
        region_words=tuple((str(w), str(r)) for w, r in parameters_doc["regionWords"]),
        report_terms=load_report_terms(root / "report-terms.json"),
    )
    for path in sorted((root / "valuesets").iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".json"):
            continue
        valueset, entries = _parse_valueset(orjson.loads(path.read_bytes()))
        if valueset.id in valuesets:
            raise ValueError(f"duplicate value set id {valueset.id} in {path.name}")
        valuesets[valueset.id] = valueset
        for system, code, is_pattern, meaning in entries:
            if is_pattern:
                terminology.add_pattern(system, code, meaning)
            else:
                terminology.add_code(system, code, meaning)
    if site_folder is not None:
        extend_with_site_valuesets(terminology, site_folder)
    return terminology


_SITE_REGIONS = THORACOLUMBAR_REGIONS | {"cervicothoracic"}
_SITE_KEYS = frozenset({"id", "title", "description", "sources", "compose", "text"})
_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")


def _is_absolute_uri(system: object) -> bool:
    """FHIR Coding.system is an absolute URI: http(s)://host/..., urn:oid:..., urn:uuid:..."""
    if not isinstance(system, str) or not _ABSOLUTE_URI.match(system):
        return False
    scheme, rest = system.split(":", 1)
    return rest.startswith("//") and len(rest) > 2 if scheme.lower() in ("http", "https") else True


def _extend_from_site_file(terminology: Terminology, name: str, doc: object) -> SiteValueSetFile:
    """Add one site file's codes, patterns and text to the shipped set it names; ValueError on
    anything that would change a rule rather than extend a code list."""
    valuesets = terminology.valuesets
    assert isinstance(valuesets, dict)
    if not isinstance(doc, dict):
        raise ValueError(f"{name}: expected a JSON object in the shipped value-set format")
    extra = sorted(set(doc) - _SITE_KEYS)
    if extra:
        raise ValueError(
            f"{name}: only codes, patterns and text can be added; not allowed: {', '.join(extra)}"
        )
    vs_id = doc.get("id")
    if not isinstance(vs_id, str) or vs_id not in valuesets:
        raise ValueError(f"{name}: unknown value set id {vs_id!r} (it must name a shipped set)")
    sources = doc.get("sources")
    if not isinstance(sources, list) or not sources or not all(isinstance(x, str) and x for x in sources):
        raise ValueError(f"{name}: 'sources' must list who maintains these codes")
    known = {
        (system, normalise_code(code))
        for (system, code), m in terminology._exact.items()
        if vs_id in m.concepts
    }
    seen_patterns = {
        (system, p.pattern)
        for system, items in terminology._patterns.items()
        for p, m in items
        if vs_id in m.concepts
    }
    codes = patterns = 0
    compose = doc.get("compose", [])
    if not isinstance(compose, list):
        raise ValueError(f"{name}: 'compose' must be a list")
    for index, part in enumerate(compose):
        if not isinstance(part, dict) or not _is_absolute_uri(part.get("system")):
            raise ValueError(
                f"{name}: compose[{index}].system must be an absolute URI (e.g. urn:oid:... or https://...)"
            )
        system = part["system"]
        for key, is_pattern in (("concepts", False), ("patterns", True)):
            items = part.get(key, [])
            field_name = "pattern" if is_pattern else "code"
            if not isinstance(items, list) or not all(
                isinstance(i, dict) and isinstance(i.get(field_name), str) and i[field_name].strip()
                for i in items
            ):
                raise ValueError(f"{name}: compose[{index}].{key} must be objects with a '{field_name}'")
            for item in items:
                value = item[field_name]
                level = item.get("level")
                if level is not None and level not in _LEVEL_ORDER:
                    raise ValueError(f"{name}: {value}: level must be one of T1-T12, L1-L5")
                region = item.get("region")
                if region is not None and region not in _SITE_REGIONS:
                    raise ValueError(
                        f"{name}: {value}: region must be one of {', '.join(sorted(_SITE_REGIONS))}"
                    )
                modality = item.get("modality")
                if modality is not None and not (isinstance(modality, str) and modality.isalpha()):
                    raise ValueError(
                        f"{name}: {value}: modality must be a DICOM modality code (MR, CT, DX, NM ...)"
                    )
                meaning = CodeMeaning(frozenset({vs_id}), level, item.get("region"), item.get("modality"))
                if is_pattern:
                    key_p = (system, _glob_to_regex(value))
                    if key_p in seen_patterns:
                        raise ValueError(f"{name}: duplicate pattern {value} in {vs_id}")
                    seen_patterns.add(key_p)
                    terminology.add_pattern(system, value, meaning)
                    patterns += 1
                else:
                    key_c = (system, normalise_code(value))
                    if key_c in known:
                        raise ValueError(f"{name}: duplicate code {value} ({system}) in {vs_id}")
                    known.add(key_c)
                    terminology.add_code(system, value, meaning)
                    codes += 1
    text = doc.get("text", {})
    includes = text.get("include", []) if isinstance(text, dict) else None
    if not isinstance(includes, list) or not all(isinstance(p, str) and p for p in includes):
        raise ValueError(f"{name}: text.include must be a list of regular expressions")
    try:
        compiled = tuple(re.compile(p, re.IGNORECASE) for p in includes)
    except re.error as error:
        raise ValueError(f"{name}: text.include: bad regular expression ({error})") from None
    if compiled:
        shipped = valuesets[vs_id]
        valuesets[vs_id] = replace(shipped, text_patterns=shipped.text_patterns + compiled)
    return SiteValueSetFile(name, vs_id, tuple(sources), codes, patterns, len(compiled))


def extend_with_site_valuesets(terminology: Terminology, folder: Traversable) -> Terminology:
    """Every *.json of a site folder (CDS_VALUESET_DIR) extends a shipped set by id, at start only."""
    added: list[SiteValueSetFile] = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".json"):
            continue
        try:
            doc = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as error:
            raise ValueError(f"{path.name}: not JSON ({error})") from None
        added.append(_extend_from_site_file(terminology, path.name, doc))
    terminology.site_files = (*terminology.site_files, *added)
    terminology._cache.clear()
    return terminology
