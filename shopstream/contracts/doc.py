"""The topic tables of docs/events.md, generated from the contracts:
``python -m shopstream.contracts.doc`` rewrites the part between the markers."""

from __future__ import annotations

import inspect
import sys
import types
import typing
from pathlib import Path

import msgspec

from shopstream.contracts import registry, topics

BEGIN = "<!-- generated from shopstream/contracts: python -m shopstream.contracts.doc -->"
END = "<!-- end of generated part -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def _type(annotation: object) -> str:
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        inner = ", ".join(f"{f.name}: {_type(f.type)}" for f in msgspec.structs.fields(annotation))
        return "{" + inner + "}"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type(a) for a in args)
    if origin is list:
        return f"[{_type(args[0])}]"
    if origin is dict:
        return "object"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation)).replace("datetime", "ISO 8601")


def _fields(cls: type[registry.Contract]) -> str:
    out = []
    for f in msgspec.structs.fields(cls):
        optional = "" if f.required else "?"
        out.append(f"`{f.name}{optional}`: {_type(f.type)}")
    return ", ".join(out) or "—"


def tables() -> str:
    parts = [BEGIN]
    for topic in (*topics.EVENT_TOPICS,):
        found = [c for c in registry.contracts() if topic == c.TOPIC]
        if not found:
            continue
        parts += ["", f"### `{topic}` (published by {found[0].PUBLISHER})", "",
                  "| type | version | data | meaning |", "|---|---|---|---|"]  # fmt: skip
        for cls in found:
            doc = " ".join(inspect.cleandoc(cls.__doc__ or "").split()) if "__doc__" in vars(cls) else ""
            parts.append(f"| `{cls.__name__}` | {cls.VERSION} | {_fields(cls)} | {doc} |")
    parts += ["", END]
    return "\n".join(parts)


def rewritten(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + tables() + tail


def main() -> int:
    DOC.write_text(rewritten(DOC.read_text()))
    print(f"{DOC} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
