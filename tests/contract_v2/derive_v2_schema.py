"""Derive the compact V2 contract schema (``portone_v2_schema.json``) from PortOne's published V2 OpenAPI.

Run by hand when the reference changes; the test suite reads only the committed output:

    cd tests/contract_v2
    python derive_v2_schema.py path/to/portone-v2-openapi.json > portone_v2_schema.json

Kept per endpoint the client or the sandbox speaks: its path/query parameters (name, location, required),
the request body's schema name and the 200 answer's. Kept per schema reachable from those: required
fields, each property's type (or the schema it refers to, or an array of either), enums, and for a
``oneOf`` its discriminator property and mapping (value -> schema). Nothing is added by hand.
"""

from __future__ import annotations

import json
import sys
from typing import Any

ENDPOINTS = (
    ("get", "/payments/{paymentId}"),
    ("get", "/payments"),
    ("post", "/payments/{paymentId}/billing-key"),
    ("post", "/payments/{paymentId}/schedule"),
    ("get", "/payment-schedules"),
    ("delete", "/payment-schedules"),
    ("get", "/payment-schedules/{paymentScheduleId}"),
    ("get", "/billing-keys"),
    ("get", "/billing-keys/{billingKey}"),
)


def _ref(node: dict[str, Any]) -> str:
    return str(node["$ref"]).rsplit("/", 1)[-1]


def _shape(node: dict[str, Any], todo: list[str]) -> dict[str, Any]:
    if "$ref" in node:
        todo.append(_ref(node))
        return {"ref": _ref(node)}
    if node.get("type") == "array":
        return {"array": _shape(node.get("items", {}), todo)}
    out: dict[str, Any] = {"type": node.get("type", "any")}
    if "enum" in node:
        out["enum"] = list(node["enum"])
    if node.get("format") == "date-time":
        out["format"] = "date-time"
    return out


def derive(doc: dict[str, Any]) -> dict[str, Any]:
    schemas = doc["components"]["schemas"]
    todo: list[str] = []
    endpoints: dict[str, Any] = {}
    for method, path in ENDPOINTS:
        op = doc["paths"][path][method]
        params = {
            p["name"]: {"in": p["in"], "required": bool(p.get("required"))} for p in op.get("parameters", [])
        }
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        answer = op["responses"]["200"]["content"]["application/json"]["schema"]
        endpoints[f"{method} {path}"] = {
            "parameters": params,
            "body": _ref(body) if body else None,
            "response": _ref(answer),
        }
        if body:
            todo.append(_ref(body))
        todo.append(_ref(answer))
    objects: dict[str, Any] = {}
    while todo:
        name = todo.pop()
        if name in objects:
            continue
        node = schemas[name]
        if "oneOf" in node:
            disc = node.get("discriminator", {})
            mapping = {k: v.rsplit("/", 1)[-1] for k, v in disc.get("mapping", {}).items()}
            todo.extend(mapping.values())
            todo.extend(_ref(x) for x in node["oneOf"])
            objects[name] = {"oneof": disc.get("propertyName"), "mapping": mapping}
        elif "enum" in node:
            objects[name] = {"enum": list(node["enum"])}
        elif node.get("type") == "object" or "properties" in node:
            props = {k: _shape(v, todo) for k, v in node.get("properties", {}).items()}
            objects[name] = {"required": list(node.get("required", [])), "properties": props}
        else:
            objects[name] = _shape(node, todo)
    return {
        "source": doc["info"]["version"],
        "endpoints": endpoints,
        "objects": dict(sorted(objects.items())),
    }


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        json.dump(derive(json.load(fh)), sys.stdout, ensure_ascii=False, indent=1, sort_keys=False)
        sys.stdout.write("\n")
