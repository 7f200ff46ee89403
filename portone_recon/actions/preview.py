"""How a fix-up's request is shown: in the form that will be sent.

An action's request is built in the V1 form (:func:`~portone_recon.actions.requests.build_request`);
a client that sends some actions another way (the :class:`~portone_recon.actions.v2_client.RoutingClient`
sends a V2 customer's fix-ups through V2) says so through ``wire_requests``, built by the same code that
sends them. The preview of a dry run, the journal's ``request`` and the fix-up report's plan table all
come from here, so what a person reads is what goes over the wire. No form holds the API secret (it is
only ever in the ``Authorization`` header, which no form carries).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from portone_recon._time import KST
from portone_recon.actions.model import Action, FixPlan
from portone_recon.actions.requests import build_request
from portone_recon.api.v2.requests import V2Request

__all__ = ["WireForms", "describe_request", "plan_frame", "request_line", "wire_requests"]


@runtime_checkable
class WireForms(Protocol):
    """A client that sends some actions in another form than the V1 request they are built as."""

    def wire_requests(self, kind: str, target: Mapping[str, Any]) -> Sequence[V2Request] | None: ...


def wire_requests(action: Action, client: object | None) -> Sequence[V2Request] | None:
    """The requests ``client`` sends for ``action`` when they differ from the V1 form; None otherwise."""
    if isinstance(client, WireForms):
        return client.wire_requests(action.kind, action.target)
    return None


def describe_request(a: Action, client: object | None = None) -> str:
    """The request of an action in full, as it will be sent by ``client`` (times also shown in KST)."""
    wire = wire_requests(a, client)
    if wire is not None:
        line = " ; ".join(r.describe() for r in wire) if wire else "(no request)"
        if a.kind == "rebook":
            for e in build_request(a.kind, a.target)["json"]["schedules"]:
                at = datetime.fromtimestamp(int(e["schedule_at"]), tz=KST)
                line += (
                    f" [{e['merchant_uid']} at {at:%Y-%m-%d %H:%M} KST, {int(e['amount']):,} {e['currency']}]"
                )
    else:
        req = build_request(a.kind, a.target)
        line = f"{req['method']} {req['path']}"
        body = req.get("json")
        if body is not None:
            line += " " + json.dumps(body, ensure_ascii=False, sort_keys=True)
            for e in body.get("schedules") or ():
                at = datetime.fromtimestamp(int(e["schedule_at"]), tz=KST)
                line += (
                    f" [{e['merchant_uid']} at {at:%Y-%m-%d %H:%M} KST, {int(e['amount']):,} {e['currency']}]"
                )
    if a.kind == "reverify":
        mu = a.target.get("merchant_uid")
        line += f" then mark order {mu} paid locally" if mu else " then mark its order paid locally"
    if a.kind == "retry":
        line += f" (charges {int(a.target['amount']):,} {a.target.get('currency') or 'KRW'} now)"
    return line


def request_line(a: Action, client: object | None = None) -> str:
    """Method and path of each request the action sends (a table's ``request`` column)."""
    wire = wire_requests(a, client)
    if wire is not None:
        return " ; ".join(f"{r.method} {r.path}" for r in wire)
    return f"{a.request.get('method', '')} {a.request.get('path', '')}".strip()


def plan_frame(plan: FixPlan, client: object | None = None) -> pd.DataFrame:
    """:meth:`FixPlan.to_frame` with each ``request`` in the form ``client`` sends it."""
    frame = plan.to_frame()
    if client is not None and len(frame):
        by_id = {a.action_id: a for a in plan.actions}
        frame["request"] = [request_line(by_id[i], client) for i in frame["action_id"]]
    return frame
