"""What logs and the operator console must never show: tokens, passwords, credentials and full
shipping addresses (docs/security.md#redaction). Applied to every log record (shopstream.logging)
and to every message the console displays; a country is kept, as it is what an operator needs."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"
# Keys whose values are secret wherever they appear (compared lower-case, "-" as "_").
SECRET_KEYS = frozenset({
    "authorization", "password", "passwd", "secret", "token", "access_token", "id_token",
    "refresh_token", "service_token", "x_service_credential", "service_credential", "api_key",
    "client_secret",
})  # fmt: skip
ADDRESS_KEYS = frozenset({"shipping_address", "billing_address", "address"})

_TEXT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # a JWT: three base64url parts, the first a JSON header ("eyJ")
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "[token]"),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    # user:password@ in a URL (PostgreSQL DSNs, proxies)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):[^@\s/]+@"), r"\1:" + REDACTED + "@"),
    # password=..., "password": "...", X-Service-Credential: ...
    (
        re.compile(
            r"(?i)([\"']?(?:password|passwd|secret|token|x-service-credential|service_token)"
            r"[\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;}&]+)"
        ),
        r"\1" + f'"{REDACTED}"',
    ),
    # an address printed as a dict or a struct: shipping_address={...} / Address(...)
    (
        re.compile(r"([\"']?(?:shipping|billing)_address[\"']?\s*[:=]\s*)(\{[^{}]*\}|\w*\([^()]*\))"),
        r"\1" + f'"{REDACTED}"',
    ),
)


def text(value: str) -> str:
    """``value`` with every token, password and printed address replaced."""
    for pattern, replacement in _TEXT_RULES:
        value = pattern.sub(replacement, value)
    return value


def _address(value: Any) -> Any:
    if isinstance(value, dict):
        country = value.get("country")
        return {"country": country, "redacted": True} if country else REDACTED
    return REDACTED


def value(data: Any) -> Any:
    """A copy of decoded JSON with secret fields and addresses replaced, strings cleaned."""
    if isinstance(data, dict):
        cleaned: dict[Any, Any] = {}
        for key, item in data.items():
            name = str(key).lower().replace("-", "_")
            if name in SECRET_KEYS:
                cleaned[key] = REDACTED
            elif name in ADDRESS_KEYS:
                cleaned[key] = _address(item)
            else:
                cleaned[key] = value(item)
        return cleaned
    if isinstance(data, list):
        return [value(item) for item in data]
    if isinstance(data, str):
        return text(data)
    return data
