"""GET /openapi.json: the public endpoints as an OpenAPI 3.1 document, for integrators and fuzzing.

Written by hand, beside the route table, because relay's endpoints read raw bodies (three
media types, Formspree's field aliases) that no framework would describe for us; the tests
check that every public route is in it and fuzz every operation it lists. /admin is not
public and is not listed.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from relay import __version__

_TEXT = {"type": "string"}
_FIELDS: dict[str, Any] = {
    "type": "object",
    "required": ["name", "email", "message"],
    "properties": {
        "name": {"type": "string", "maxLength": 200},
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "_replyto": {"type": "string", "description": "Formspree's alias of `email`"},
        "message": {"type": "string", "maxLength": 10000},
        "phone": {"type": "string", "maxLength": 40},
        "company": {"type": "string", "maxLength": 200},
        "_next": {
            "type": "string",
            "description": "where a browser goes next; only towards the form's own origins",
        },
    },
    "additionalProperties": True,
}
_ERROR = {
    "type": "object",
    "properties": {
        "ok": {"const": False},
        "error": _TEXT,
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": _TEXT, "code": _TEXT, "message": _TEXT},
            },
        },
    },
}
_FORM_ID = {
    "name": "form_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _submit() -> dict[str, Any]:
    refusals = {
        "400": "malformed body, a file part, a bad Idempotency-Key",
        "403": "the Origin is not one of the form's allowed_origins",
        "404": "no form with this id",
        "408": "the body did not arrive in time",
        "413": "the body is larger than the form accepts",
        "415": "not urlencoded, multipart or JSON",
        "422": "invalid fields, each with a code",
        "429": "too many submissions; Retry-After says when",
        "503": "the database could not commit; nothing was accepted; retry",
    }
    return {
        "summary": "Submit a form (Formspree-compatible)",
        "parameters": [
            _FORM_ID,
            {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}},
            {"name": "Origin", "in": "header", "schema": _TEXT},
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": _FIELDS},
                "multipart/form-data": {"schema": _FIELDS},
                "application/json": {"schema": _FIELDS},
            },
        },
        "responses": {
            "202": _answer(
                "accepted (JSON clients)",
                {
                    "type": "object",
                    "properties": {"ok": {"const": True}, "next": _TEXT, "id": _TEXT},
                },
            ),
            "303": _answer("accepted (browsers): to the thank-you page"),
            **{code: _answer(text, _ERROR) for code, text in refusals.items()},
        },
    }


def _preflight(*parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": "CORS preflight for the form's own origins",
        "parameters": [*parameters, {"name": "Origin", "in": "header", "schema": _TEXT}],
        "responses": {
            "204": _answer("allowed"),
            "403": _answer("origin not allowed"),
            "404": _answer("no such form"),
        },
    }


def _elsewhere(prefix: str) -> dict[str, Any]:
    """Any other path or method under /f/ or /p/: JSON for JSON clients, never plain text."""
    operation = {
        "summary": f"Anything else under {prefix}: JSON for JSON clients, a page for browsers",
        "parameters": [{"name": "rest", "in": "path", "required": True, "schema": _TEXT}],
        "responses": {
            "404": _answer("no such form or path", _ERROR),
            "405": _answer("this address only accepts forms (Allow says what)", _ERROR),
        },
    }
    return dict.fromkeys(("get", "post", "put", "patch", "delete", "options"), operation)


def document() -> dict[str, Any]:
    """The OpenAPI document (a new dict each call)."""
    html = {"content": {"text/html": {"schema": _TEXT}}}
    project = {"name": "project", "in": "path", "required": True, "schema": _TEXT}
    return {
        "openapi": "3.1.0",
        "info": {"title": "relay", "version": __version__},
        "paths": {
            "/": {
                "get": {
                    "summary": "The example page: the contact form in French and English",
                    "parameters": [{"name": "lang", "in": "query", "schema": _TEXT}],
                    "responses": {"200": {"description": "the page", **html}},
                }
            },
            "/example.js": {
                "get": {
                    "summary": "The example page's script (relay's own file)",
                    "responses": {"200": {"description": "JavaScript"}},
                }
            },
            "/altcha/{name}": {
                "get": {
                    "summary": "The ALTCHA widget's files for the example page (when installed)",
                    "parameters": [
                        {"name": "name", "in": "path", "required": True, "schema": _TEXT}
                    ],
                    "responses": {"200": {"description": "a file"}, "404": {"description": "no"}},
                }
            },
            "/f/{form_id}": {"post": _submit(), "options": _preflight(_FORM_ID)},
            "/p/{project}/f/{form_id}": {
                "post": {**_submit(), "parameters": [project, *_submit()["parameters"]]},
                "options": _preflight(project, _FORM_ID),
            },
            "/f/{form_id}/challenge": {
                "get": {
                    "summary": "An ALTCHA proof-of-work challenge for a form with proof_of_work",
                    "parameters": [_FORM_ID, {"name": "Origin", "in": "header", "schema": _TEXT}],
                    "responses": {
                        "200": _answer("the challenge (ALTCHA v2)", {"type": "object"}),
                        "404": _answer("no such form, or it asks for no proof of work", _ERROR),
                    },
                },
                "options": _preflight(_FORM_ID),
            },
            "/f/{form_id}/thanks": {
                "get": {
                    "summary": "The built-in thank-you page",
                    "parameters": [_FORM_ID],
                    "responses": {
                        "200": {"description": "the page", **html},
                        "404": {"description": "no such form", **html},
                    },
                }
            },
            "/webhooks/mailgun": {
                "post": {
                    "summary": "Mailgun's signed delivery events",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "signature": {
                                            "type": "object",
                                            "properties": {
                                                "timestamp": _TEXT,
                                                "token": _TEXT,
                                                "signature": _TEXT,
                                            },
                                        },
                                        "event-data": {"type": "object"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _answer("recorded, known or ignored"),
                        "406": _answer("refused (signature, age, replay, body): not retried"),
                        "503": _answer("not stored; Mailgun retries"),
                    },
                }
            },
            "/consent/withdraw": {
                "get": {
                    "summary": "The withdrawal link: a confirmation page with a button",
                    "parameters": [{"name": "token", "in": "query", "schema": _TEXT}],
                    "responses": {
                        "200": {"description": "the confirmation page", **html},
                        "400": {"description": "the link cannot be used", **html},
                    },
                },
                "post": {
                    "summary": "Withdraw marketing consent (the button; RFC 8058 one-click)",
                    "parameters": [{"name": "token", "in": "query", "schema": _TEXT}],
                    "responses": {
                        "200": {"description": "withdrawn", **html},
                        "400": {"description": "the link cannot be used", **html},
                        "503": {"description": "not saved; try again", **html},
                    },
                },
            },
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": _answer("ok")}}},
            "/readyz": {
                "get": {
                    "summary": "Readiness",
                    "responses": {"200": _answer("ready"), "503": _answer("not ready")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": _answer("metrics"), "401": _answer("token needed")},
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document", "responses": {"200": _answer("the document")}}
            },
            "/f/{rest}": _elsewhere("/f/"),
            "/p/{rest}": _elsewhere("/p/"),
        },
    }


async def openapi(_request: Request) -> JSONResponse:
    """GET /openapi.json."""
    return JSONResponse(document())
