"""PortOne V2 API (``api.portone.io``): transport, error mapping, tolerant records, paging, client.

Own httpx code rather than ``portone-server-sdk``: the SDK's parser is strict (an unknown oneOf case or a
missing field raises ``ValueError`` for the whole listing), it has no retries, no ``Idempotency-Key`` and no
paging, and it would fix the wire format to one SDK release. Here bulk readers get the raw JSON of every
item and decide per item (store or quarantine), and the same retry policy as V1 applies.
"""

from portone_recon.api.v2.client import PortOneV2Client
from portone_recon.api.v2.errors import v2_error
from portone_recon.api.v2.paging import MAX_PAGE_REACH

__all__ = ["MAX_PAGE_REACH", "PortOneV2Client", "v2_error"]
