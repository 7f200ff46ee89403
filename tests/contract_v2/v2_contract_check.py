"""Checks of V2 requests and answers against ``portone_v2_schema.json`` (derived from PortOne's schema)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

SCHEMA = json.loads((Path(__file__).parent / "portone_v2_schema.json").read_text(encoding="utf-8"))


def _templates() -> list[tuple[str, re.Pattern[str], str]]:
    out = []
    for key in SCHEMA["endpoints"]:
        method, path = key.split(" ", 1)
        rx = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        out.append((method.upper(), re.compile(f"^{rx}$"), key))
    return out


TEMPLATES = _templates()


def endpoint_of(method: str, raw_path: str) -> str:
    matches = [key for m, rx, key in TEMPLATES if m == method and rx.match(raw_path)]
    assert matches, f"{method} {raw_path}: no such endpoint in PortOne's V2 schema"
    return min(matches, key=lambda k: k.count("{"))


def _type_ok(value: Any, kind: str) -> bool:
    return {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "object": isinstance(value, dict),
    }.get(kind, True)


def check_value(value: Any, shape: dict[str, Any], where: str) -> Iterator[str]:
    """Problems of ``value`` against a compact shape. V2 leaves optional fields out: null is a problem."""
    if value is None:
        yield f"{where}: null (V2 leaves an absent field out)"
        return
    if "ref" in shape:
        yield from check_named(value, shape["ref"], where)
    elif "array" in shape:
        if not isinstance(value, list):
            yield f"{where}: expected an array, got {type(value).__name__}"
            return
        for i, item in enumerate(value):
            yield from check_value(item, shape["array"], f"{where}[{i}]")
    else:
        if not _type_ok(value, shape["type"]):
            yield f"{where}: expected {shape['type']}, got {type(value).__name__} {value!r:.40}"
        elif "enum" in shape and value not in shape["enum"]:
            yield f"{where}: {value!r} not in {shape['enum']}"
        elif shape.get("format") == "date-time":
            try:
                moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
                if moment.tzinfo is None:
                    yield f"{where}: {value!r} has no offset"
            except ValueError:
                yield f"{where}: {value!r} is not RFC 3339"


def check_named(value: Any, name: str, where: str) -> Iterator[str]:
    spec = SCHEMA["objects"][name]
    if "enum" in spec:
        if value not in spec["enum"]:
            yield f"{where}: {value!r} not in {name}"
        return
    if "oneof" in spec:
        if not isinstance(value, dict):
            yield f"{where}: expected a {name} object"
            return
        case = spec["mapping"].get(value.get(spec["oneof"]))
        if case is None:
            yield f"{where}.{spec['oneof']}: {value.get(spec['oneof'])!r} is not a case of {name}"
            return
        yield from check_named(value, case, where)
        return
    if "properties" not in spec:
        yield from check_value(value, spec, where)
        return
    if not isinstance(value, dict):
        yield f"{where}: expected a {name} object, got {type(value).__name__}"
        return
    for field in spec["required"]:
        if field not in value:
            yield f"{where}.{field}: required by {name}, missing"
    for field, item in value.items():
        if field not in spec["properties"]:
            yield f"{where}.{field}: not a field of {name}"
            continue
        yield from check_value(item, spec["properties"][field], f"{where}.{field}")


def request_body(request: httpx.Request) -> Any:
    raw = request.url.params.get("requestBody")
    if raw is not None:
        return json.loads(raw)
    return json.loads(request.content) if request.content else None


def check_request(request: httpx.Request) -> list[str]:
    raw_path = request.url.raw_path.decode().split("?", 1)[0]
    key = endpoint_of(request.method, raw_path)
    spec = SCHEMA["endpoints"][key]
    problems = []
    for name, _ in request.url.params.multi_items():
        p = spec["parameters"].get(name)
        if p is None or p["in"] != "query":
            problems.append(f"{key}: query parameter {name!r} is not in the schema")
    match = next(rx.match(raw_path) for m, rx, k in TEMPLATES if k == key)
    assert match is not None
    for name, value in match.groupdict().items():
        if "/" in unquote(value) and "%2F" not in value.upper():
            problems.append(f"{key}: path {name} not percent-escaped")
    body = request_body(request)
    if body is not None:
        if spec["body"] is None:
            problems.append(f"{key}: sends a body the schema does not define")
        else:
            problems += [f"{key}: {p}" for p in check_named(body, spec["body"], "body")]
    elif spec["body"] is not None and request.method == "DELETE":
        problems.append(f"{key}: requestBody required and not sent")
    return problems


def check_answer(request: httpx.Request, response: httpx.Response) -> list[str]:
    raw_path = request.url.raw_path.decode().split("?", 1)[0]
    key = endpoint_of(request.method, raw_path)
    if response.status_code != 200:
        body = response.json()
        ok = isinstance(body, dict) and isinstance(body.get("type"), str)
        return [] if ok else [f"{key}: error body {body!r:.80} is not {{type, message}}"]
    return [
        f"{key}: {p}" for p in check_named(response.json(), SCHEMA["endpoints"][key]["response"], "response")
    ]
