"""Derive the compact contract schema (``portone_v1_schema.json``) from PortOne's published V1 OpenAPI.

Run by hand when the reference changes; the test suite reads only the committed output:

    cd tests/contract
    python derive_schema.py path/to/portone-v1-openapi.json > portone_v1_schema.json

Kept per endpoint the client uses: its query/path parameters (name, location, type, required, enum) and
the shape of ``response`` (an object definition, an array of one, or a paged listing). Kept per object
definition: required fields, each property's type (or the definition it refers to) and enum.
Where the published schema is known to be wrong, ``OVERRIDES`` says so (and why); nothing else is added.
"""

from __future__ import annotations

import json
import sys
from typing import Any

#: The endpoints (method, path template) the client calls.
ENDPOINTS = (
    ("post", "/users/getToken"),
    ("get", "/payments/{imp_uid}"),
    ("get", "/payments"),
    ("get", "/payments/find/{merchant_uid}/{payment_status}"),
    ("get", "/payments/findAll/{merchant_uid}/{payment_status}"),
    ("get", "/payments/status/{payment_status}"),
    ("post", "/payments/cancel"),
    ("get", "/subscribe/customers"),
    ("get", "/subscribe/customers/{customer_uid}"),
    ("post", "/subscribe/customers/{customer_uid}"),
    ("delete", "/subscribe/customers/{customer_uid}"),
    ("get", "/subscribe/customers/{customer_uid}/payments"),
    ("get", "/subscribe/customers/{customer_uid}/schedules"),
    ("post", "/subscribe/payments/again"),
    ("post", "/subscribe/payments/schedule"),
    ("get", "/subscribe/payments/schedule"),
    ("post", "/subscribe/payments/unschedule"),
    ("get", "/subscribe/payments/schedule/{merchant_uid}"),
    ("put", "/subscribe/payments/schedule/{merchant_uid}"),
    ("post", "/subscribe/payments/schedule/{merchant_uid}/reschedule"),
    ("post", "/subscribe/payments/schedule/{merchant_uid}/retry"),
    ("get", "/subscribe/payments/schedule/customers/{customer_uid}"),
)

#: Known inaccuracies of the published schema (../shared/portone-v1-api.md, "Spec inaccuracies").
OVERRIDES: dict[str, dict[str, Any]] = {
    "get /subscribe/payments/schedule": {
        "response": {"paged": "ScheduleResultAnnotation"},
        "why": "annotated as a bare array; PortOne and every SDK page it ({total, previous, next, list})",
    },
    "get /subscribe/payments/schedule/customers/{customer_uid}": {
        "response": {"paged": "ScheduleResultAnnotation"},
        "why": "annotated as a bare array; paged like the range listing (Node SDK collection, PHP paged)",
    },
    "get /subscribe/customers/{customer_uid}/schedules": {
        "response": {"paged": "ScheduleResultAnnotation"},
        "why": "annotated as a bare array; paged like the range listing",
    },
}


def _ref(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _type(node: dict[str, Any]) -> Any:
    ref = _ref(node)
    if ref:
        return {"ref": ref}
    if node.get("type") == "array":
        return {"array": _type(node.get("items") or {})}
    out: dict[str, Any] = {"type": node.get("type", "any")}
    if node.get("enum"):
        out["enum"] = list(node["enum"])
    return out


def _response_shape(defs: dict[str, Any], node: dict[str, Any] | None) -> Any:
    """What ``response`` holds for a 200: ``{"ref"}``, ``{"array"}``, ``{"paged"}`` or ``{"oneof"}``."""
    if not node:
        return None
    if "properties" in node and "$ref" not in node and "allOf" not in node:
        # several possible envelopes (plain or super billing key)
        return {"oneof": [_response_shape(defs, v) for v in node["properties"].values()]}
    name = _ref(node)
    envelope = defs[name] if name else node
    for part in envelope.get("allOf", []):
        resp = part.get("properties", {}).get("response")
        if resp is None:
            continue
        shape = _type(resp)
        if "ref" in shape and defs[shape["ref"]].get("properties", {}).get("list"):
            return {"paged": _ref(defs[shape["ref"]]["properties"]["list"]["items"])}
        return shape
    return None


def derive(spec: dict[str, Any]) -> dict[str, Any]:
    defs = spec["definitions"]
    endpoints: dict[str, Any] = {}
    used: set[str] = set()
    for method, path in ENDPOINTS:
        op = spec["paths"][path][method]
        params = {
            p["name"]: {
                "in": p["in"],
                "type": p.get("type", "any"),
                "required": bool(p.get("required")),
                **({"enum": list(p["enum"])} if p.get("enum") else {}),
            }
            for p in op.get("parameters", [])
        }
        key = f"{method} {path}"
        response = _response_shape(defs, (op.get("responses", {}).get("200") or {}).get("schema"))
        entry: dict[str, Any] = {"parameters": params, "response": response}
        if key in OVERRIDES:
            entry.update(OVERRIDES[key])
        endpoints[key] = entry
        used.update(_names(entry["response"]))
    objects: dict[str, Any] = {}
    todo = sorted(used)
    while todo:
        name = todo.pop()
        if name in objects:
            continue
        node = defs[name]
        props = {k: _type(v) for k, v in node.get("properties", {}).items()}
        objects[name] = {"required": list(node.get("required", [])), "properties": props}
        for t in props.values():
            todo.extend(n for n in _names(t) if n not in objects)
    return {
        "source": f"{spec['info'].get('title', 'PortOne V1')} {spec['info'].get('version', '')}".strip(),
        "endpoints": endpoints,
        "objects": dict(sorted(objects.items())),
    }


def _names(shape: Any) -> set[str]:
    if isinstance(shape, dict):
        out: set[str] = set()
        for k, v in shape.items():
            if k in ("ref", "paged") and isinstance(v, str):
                out.add(v)
            else:
                out |= _names(v)
        return out
    if isinstance(shape, list):
        return set().union(*(_names(v) for v in shape)) if shape else set()
    return set()


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    json.dump(derive(spec), sys.stdout, ensure_ascii=False, indent=1, sort_keys=False)
    sys.stdout.write("\n")
