"""GET /openapi.json: the OpenAPI 3.1 description of every endpoint, built from the service
definitions (once per call: it is small)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response

from cds_service.hooks.catalogue import ServiceDefinition
from cds_service.runtime import runtime
from cds_service.web.responses import json_response

_OUTCOME = {"$ref": "#/components/schemas/OperationOutcome"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _OUTCOME}}}


_UNAUTHORIZED = {
    "description": "No valid CDS Hooks JWT (empty body)",
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
}

_SCHEMAS: dict[str, Any] = {
    "OperationOutcome": {
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"const": "OperationOutcome"},
            "issue": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["severity", "code"],
                    "properties": {
                        "severity": {"type": "string"},
                        "code": {"type": "string"},
                        "diagnostics": {"type": "string"},
                        "expression": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    "HookRequest": {
        "type": "object",
        "required": ["hook", "hookInstance", "context"],
        "properties": {
            "hook": {"type": "string"},
            "hookInstance": {"type": "string"},
            "fhirServer": {"type": "string"},
            "fhirAuthorization": {"type": "object"},
            "context": {
                "type": "object",
                "required": ["patientId"],
                "properties": {
                    "patientId": {"type": "string"},
                    "userId": {"type": "string"},
                    "draftOrders": {"type": "object"},
                    "selections": {"type": "array", "items": {"type": "string"}},
                },
            },
            "prefetch": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
        },
    },
    "Coding": {
        "type": "object",
        "required": ["system", "code"],
        "properties": {
            "system": {"type": "string", "minLength": 1},
            "code": {"type": "string", "minLength": 1},
            "display": {"type": "string", "minLength": 1},
        },
        "additionalProperties": False,
    },
    "Action": {
        "type": "object",
        "required": ["type", "description"],
        "properties": {
            "type": {"enum": ["create", "update", "delete"]},
            "description": {"type": "string", "minLength": 1},
            "resource": {"type": "object", "required": ["resourceType"], "minProperties": 1},
            "resourceId": {"type": "string", "minLength": 1},
        },
        "additionalProperties": False,
    },
    "Card": {
        "description": "CDS Hooks 2.0.1 card; no member is null or empty (use of JSON)",
        "type": "object",
        "required": ["uuid", "summary", "indicator", "source"],
        "dependentRequired": {"suggestions": ["selectionBehavior"]},
        "properties": {
            "uuid": {"type": "string", "format": "uuid"},
            "summary": {"type": "string", "minLength": 1, "maxLength": 139},
            "detail": {"type": "string", "minLength": 1},
            "indicator": {"enum": ["info", "warning", "critical"]},
            "source": {
                "type": "object",
                "required": ["label"],
                "properties": {
                    "label": {"type": "string", "minLength": 1},
                    "url": {"type": "string", "format": "uri"},
                    "icon": {"type": "string", "format": "uri"},
                    "topic": {"$ref": "#/components/schemas/Coding"},
                },
                "additionalProperties": False,
            },
            "suggestions": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["label"],
                    "properties": {
                        "label": {"type": "string", "minLength": 1},
                        "uuid": {"type": "string", "format": "uuid"},
                        "isRecommended": {"type": "boolean"},
                        "actions": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"$ref": "#/components/schemas/Action"},
                        },
                    },
                    "additionalProperties": False,
                },
            },
            "selectionBehavior": {"enum": ["at-most-one", "any"]},
            "overrideReasons": {
                "type": "array",
                "minItems": 1,
                "items": {"allOf": [{"$ref": "#/components/schemas/Coding"}, {"required": ["display"]}]},
            },
            "links": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["label", "url", "type"],
                    "properties": {
                        "label": {"type": "string", "minLength": 1},
                        "url": {"type": "string", "format": "uri"},
                        "type": {"enum": ["absolute", "smart"]},
                        "appContext": {"type": "string", "minLength": 1},
                    },
                },
            },
            "extension": {"type": "object", "minProperties": 1},
        },
        "additionalProperties": False,
    },
    "Feedback": {
        "type": "object",
        "required": ["feedback"],
        "properties": {
            "feedback": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1000,
                "items": {
                    "type": "object",
                    "required": ["card", "outcome", "outcomeTimestamp"],
                    "properties": {
                        "card": {"type": "string"},
                        "outcome": {"enum": ["accepted", "overridden"]},
                        "outcomeTimestamp": {"type": "string", "format": "date-time"},
                        "acceptedSuggestions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id"],
                                "properties": {"id": {"type": "string"}},
                            },
                        },
                        "overrideReason": {
                            "type": "object",
                            "properties": {
                                "reason": {"type": "object"},
                                "userComment": {"type": "string"},
                            },
                        },
                    },
                },
            }
        },
    },
}


_OPS_PATHS: dict[str, Any] = {
    "/healthz": {
        "get": {
            "summary": "Liveness: the process answers",
            "responses": {"200": {"description": "Alive", "content": {"application/json": {}}}},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: every named check passes (value sets, card content, database)",
            "responses": {
                "200": {"description": "Ready", "content": {"application/json": {}}},
                "503": {
                    "description": "A check failed (named, reason by type only)",
                    "content": {"application/json": {}},
                },
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (text format)",
            "responses": {"200": {"description": "Metrics", "content": {"text/plain": {}}}},
        }
    },
}

_DEMO_PATHS: dict[str, Any] = {
    "/": {
        "get": {
            "summary": "Demo only: the preview page (fixture patients, cards as an EHR shows them)",
            "responses": {"200": {"description": "HTML page", "content": {"text/html": {}}}},
        }
    },
    "/preview/requests/{name}": {
        "get": {
            "summary": "Demo only: the hook request an EHR would send today for a fixture patient",
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "A CDS Hooks request", "content": {"application/json": {}}},
                "404": _error("Unknown patient or service"),
                "422": _error("The scenario could not be read"),
            },
        }
    },
    "/preview/markdown": {
        "post": {
            "summary": "Demo only: card details rendered to HTML (raw HTML disabled)",
            "responses": {
                "200": {"description": "Rendered HTML", "content": {"application/json": {}}},
                "400": _error("Not {markdown: [text, ...]}"),
            },
        }
    },
}


def openapi_document(services: Mapping[str, ServiceDefinition], *, demo: bool = False) -> dict[str, Any]:
    service_id = {
        "name": "service_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": sorted(services)},
    }
    jwt: list[dict[str, list[str]]] = [{"cdsHooksJwt": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Vertebral augmentation CDS",
            "version": "0.1.0",
            "description": "CDS Hooks 2.0.1: vertebral compression fracture -> augmentation referral.",
        },
        "paths": {
            "/cds-services": {
                "get": {
                    "summary": "Discovery",
                    "responses": {
                        "200": {
                            "description": "The services",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["services"],
                                        "properties": {
                                            "services": {"type": "array", "items": {"type": "object"}}
                                        },
                                    }
                                }
                            },
                        },
                        "401": _UNAUTHORIZED,
                    },
                }
            },
            "/cds-services/{service_id}": {
                "post": {
                    "summary": "A hook call",
                    "security": jwt,
                    "parameters": [service_id],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/HookRequest"}}
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Cards (an empty list when there is nothing to say)",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["cards"],
                                        "properties": {
                                            "cards": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Card"},
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        "400": _error("Malformed request"),
                        "401": _UNAUTHORIZED,
                        "404": _error("Unknown service"),
                        "412": _error("Required prefetch missing and no fhirServer to fetch it from"),
                        "413": _error("Body larger than CDS_MAX_BODY_BYTES"),
                    },
                }
            },
            "/cds-services/{service_id}/feedback": {
                "post": {
                    "summary": "CDS Hooks feedback on cards",
                    "security": jwt,
                    "parameters": [service_id],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Feedback"}}
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Stored (repeats of an identical entry are stored once)",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["received", "new"],
                                        "properties": {
                                            "received": {"type": "integer"},
                                            "new": {"type": "integer"},
                                        },
                                    }
                                }
                            },
                        },
                        "400": _error("Bad entries, each named by index and field"),
                        "401": _UNAUTHORIZED,
                        "404": _error("Unknown service"),
                        "413": _error("Body larger than CDS_MAX_BODY_BYTES"),
                        "503": _error("Storage unavailable; retry later"),
                    },
                }
            },
            "/rationale": {
                "get": {
                    "summary": "The rule in plain words (every card links here)",
                    "responses": {"200": {"description": "HTML page", "content": {"text/html": {}}}},
                }
            },
            "/analytics": {
                "get": {
                    "summary": "Acceptance and override rates (needs CDS_ANALYTICS_TOKEN)",
                    "security": [{"analyticsToken": []}, {"analyticsBasic": []}],
                    "parameters": [
                        {
                            "name": "since",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "format": "date"},
                        }
                    ],
                    "responses": {
                        "200": {"description": "HTML page", "content": {"text/html": {}}},
                        "400": _error("since is not a date"),
                        "401": {"description": "Token missing or wrong (empty body)"},
                        "404": _error("Analytics not enabled"),
                        "503": _error("Database unavailable"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
                }
            },
            **_OPS_PATHS,
            **(_DEMO_PATHS if demo else {}),
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "cdsHooksJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "analyticsToken": {"type": "http", "scheme": "bearer"},
                "analyticsBasic": {"type": "http", "scheme": "basic"},
            },
        },
    }


bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
def openapi() -> Response:
    rt = runtime()
    return json_response(openapi_document(rt.services, demo=rt.settings.demo))
