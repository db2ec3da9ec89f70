"""The OpenAPI document states the whole contract: every answer a caller can get.

Litestar documents what a handler returns; the answers that come from the layers around it are
added here for every operation, from what the route is: a 401 from the app-wide token check, a 403
from a role guard, a 404 for an unknown id, 503 while the database is down, and what the gateway
answers in front of every service (413, 415, 429). Each is problem+json (RFC 9457) with the same
schema. Ids are UUIDs, and the credentials are security schemes, so a client generator (or
schemathesis, tests/security/test_fuzz.py) knows what to send.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.routes import HTTPRoute

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = Reference(ref="#/components/schemas/Problem")
PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "title", "status"],
    properties={
        "type": Schema(type=OpenAPIType.STRING, examples=["about:blank"]),
        "title": Schema(type=OpenAPIType.STRING, examples=["Invalid request"]),
        "status": Schema(type=OpenAPIType.INTEGER, minimum=400, maximum=599),
        "detail": Schema(type=OpenAPIType.STRING),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            description="the fields at fault (body fields by name, headers and query by theirs)",
            items=Schema(
                type=OpenAPIType.OBJECT,
                required=["field", "message"],
                properties={
                    "field": Schema(type=OpenAPIType.STRING, examples=["price"]),
                    "message": Schema(type=OpenAPIType.STRING),
                },
            ),
        ),
    },
    description="RFC 9457 problem details",
)
BEARER = "bearer"
SERVICE = "serviceCredential"
SECURITY_SCHEMES = {
    BEARER: SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="ES256 JWT from the issuer (docs/security.md); `sub` is the customer id",
    ),
    SERVICE: SecurityScheme(
        type="apiKey",
        name="X-Service-Credential",
        security_scheme_in="header",
        description="the internal API's credential, held by order-service only",
    ),
}

# status -> (description, example title, example field)
ANSWERS: dict[int, tuple[str, str, str]] = {
    400: ("malformed JSON, wrong types, unknown fields or a bad query or header", "Invalid request",
          "price"),
    401: ("a token (or service credential) is missing where required or does not verify",
          "Unauthorized", "Authorization"),
    403: ("the principal may not do this (role, or another customer's data)", "Forbidden",
          "Authorization"),
    404: ("no such resource (or not yours: ids cannot be probed)", "Not found", "id"),
    413: ("the gateway's body limit (SHOPSTREAM_GATEWAY_BODY_LIMIT)", "Content Too Large", "body"),
    415: ("a body that is not application/json, answered by the gateway", "Unsupported Media Type",
          "Content-Type"),
    429: ("over the gateway's rate limit for this principal; see Retry-After",
          "Too Many Requests", ""),
    503: ("the database cannot be reached right now; retry after Retry-After",
          "Service unavailable", ""),
}  # fmt: skip
_PARAM_TYPE = re.compile(r"\{(\w+):\w+\}")


def _answer(status: int) -> OpenAPIResponse:
    description, title, field = ANSWERS[status]
    value: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                             "detail": description}  # fmt: skip
    if field:
        value["errors"] = [{"field": field, "message": description}]
    return OpenAPIResponse(
        description=description,
        content={
            PROBLEM_JSON: OpenAPIMediaType(
                schema=PROBLEM_REF, examples={"problem": Example(value=value)}
            )
        },
    )


def _problem_only(response: OpenAPIResponse) -> None:
    """Litestar documents its own errors as application/json; they are answered as problem+json."""
    content = response.content or {}
    if PROBLEM_JSON not in content:
        response.content = {PROBLEM_JSON: OpenAPIMediaType(schema=PROBLEM_REF)}
    if response.description.startswith("Bad request syntax"):  # Litestar's default words
        response.description = ANSWERS[400][0]


def _describe(operation: Operation, guard_names: set[str], has_ids: bool) -> None:
    responses = operation.responses if operation.responses is not None else {}
    operation.responses = responses
    statuses = {400, 401, 429, 503}
    if has_ids:
        statuses.add(404)
    if guard_names & {"require_admin", "require_user", "require_service"}:
        statuses.add(403)
    if operation.request_body is not None:
        statuses |= {413, 415}
    for status in sorted(statuses):
        responses.setdefault(str(status), _answer(status))
    for code, response in responses.items():
        if int(code) >= 400 and isinstance(response, OpenAPIResponse):
            _problem_only(response)
    for parameter in operation.parameters or []:
        name = getattr(parameter, "name", "")
        schema = getattr(parameter, "schema", None)
        is_id = name == "id" or name.endswith("_id")
        if is_id and isinstance(schema, Schema) and schema.type == OpenAPIType.STRING:
            schema.format = OpenAPIFormat.UUID
    if "require_service" in guard_names:
        operation.security = [{SERVICE: []}]
    elif guard_names & {"require_admin", "require_user"}:
        operation.security = [{BEARER: []}]
    else:  # anyone may call; a token, when sent, must verify
        operation.security = [{}, {BEARER: []}]


def document(app: Litestar) -> OpenAPI:
    """Complete ``app``'s OpenAPI document (before it is first served) and return it."""
    openapi = app.openapi_schema
    components = openapi.components if isinstance(openapi.components, Components) else Components()
    openapi.components = components
    components.schemas = {**(components.schemas or {}), "Problem": PROBLEM_SCHEMA}
    components.security_schemes = {**(components.security_schemes or {}), **SECURITY_SCHEMES}
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or openapi.paths is None:
            continue
        path = _PARAM_TYPE.sub(r"{\1}", route.path)
        item = openapi.paths.get(path)
        if item is None:
            continue
        for handler in route.route_handlers:
            names = {getattr(g, "__name__", "") for g in handler.resolve_guards()}
            for method in handler.http_methods:
                operation = getattr(item, method.lower(), None)
                if isinstance(operation, Operation):
                    _describe(operation, names, "{" in path)
    return openapi


def problems(descriptions: dict[int, str]) -> dict[int, ResponseSpec]:
    """A route's own refusals for its ``responses=``; documented as problem+json by document()."""
    return {
        status: ResponseSpec(data_container=None, description=text, media_type=PROBLEM_JSON)
        for status, text in descriptions.items()
    }
