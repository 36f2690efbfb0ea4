"""Strict mode for integrators: full FHIR R4 validation of an input, before go-live.

The service itself reads leniently (clinical-rules.md §1a) and never gates evidence on validity;
this lists what a strict FHIR parser would reject, so a feed can be fixed at its source. Messages
name the resource, the element path and the kind of error, never the value found there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError


def fhir_errors(resources: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per FHIR error: `Condition/abc: onsetDateTime: <what is wrong>`."""
    lines: list[str] = []
    for resource in resources:
        resource_type = resource.get("resourceType")
        ref = f"{resource_type}/{resource.get('id', '(no id)')}"
        try:
            model = get_fhir_model_class(str(resource_type))
        except KeyError:
            lines.append(f"{ref}: unknown resource type")
            continue
        try:
            model.model_validate(dict(resource))
        except ValidationError as error:
            for problem in error.errors(include_input=False, include_url=False):
                where = ".".join(str(part) for part in problem["loc"]) or "(resource)"
                lines.append(f"{ref}: {where}: {problem['msg']}")
        except (ValueError, TypeError, RecursionError) as error:
            lines.append(f"{ref}: {type(error).__name__}")
    return lines
