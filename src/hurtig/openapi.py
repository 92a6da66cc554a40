"""The job API's OpenAPI 3 document (GET /openapi.json)."""

from __future__ import annotations

from typing import Any


def document(functions: list[str], idempotency_key: str, auth: bool = True) -> dict[str, Any]:
    """The OpenAPI description of the job API: its security scheme and every answer."""
    problem = {"content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    refused = {
        "401": {"description": "No API key, or an unknown or revoked one (WWW-Authenticate: Bearer)", **problem},
        "403": {"description": "The API key may not call this function", **problem},
        "429": {"description": "Over the API key's rate (error rate_limited); retry after Retry-After", **problem},
    }
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "hurtig job API", "version": "1.0.0"},
        "paths": {
            "/v1/functions/{name}/jobs": {
                "post": {
                    "summary": "Submit a job; 202 only after the broker confirmed it",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": sorted(functions)},
                        },
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "pattern": idempotency_key},
                        },
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
                    "responses": {
                        "202": {
                            "description": "Accepted: the job is persisted in the broker",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
                        },
                        "400": {"description": "Invalid JSON or Idempotency-Key", **problem},
                        **(refused if auth else {}),
                        "404": {"description": "Unknown function", **problem},
                        "413": {"description": "Body too large", **problem},
                        "415": {"description": "Not application/json", **problem},
                        "503": {
                            "description": "Not accepted: the broker is unavailable, or the function's queue is full"
                            " (error queue_full); retry after Retry-After",
                            **problem,
                        },
                    },
                }
            },
            "/healthz": {"get": {"responses": {"200": {"description": "The process is up"}}}},
            "/readyz": {
                "get": {
                    "responses": {
                        "200": {"description": "Broker connection usable"},
                        "503": {"description": "Broker unavailable"},
                    }
                }
            },
            "/metrics": {"get": {"responses": {"200": {"description": "Prometheus metrics"}}}},
        },
        "components": {
            "schemas": {
                "Accepted": {
                    "type": "object",
                    "required": ["job_id", "function", "status"],
                    "properties": {
                        "job_id": {"type": "string", "format": "uuid"},
                        "function": {"type": "string"},
                        "status": {"type": "string", "enum": ["accepted"]},
                    },
                },
                "Problem": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "integer"},
                        "error": {"type": "string"},
                        "detail": {"type": "string"},
                    },
                },
            }
        },
    }
    if auth:
        doc["components"]["securitySchemes"] = {
            "apiKey": {"type": "http", "scheme": "bearer", "description": "An API key (docs/operating.md: API keys)"}
        }
        doc["paths"]["/v1/functions/{name}/jobs"]["post"]["security"] = [{"apiKey": []}]
    return doc
