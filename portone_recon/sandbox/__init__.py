"""A stateful PortOne V1 simulator: a world driven by a caller-controlled clock, served in-process
(``world.transport()``) or on loopback (``portone-recon sandbox serve``)."""

from portone_recon.sandbox.clock import SandboxClock, kst
from portone_recon.sandbox.faults import Faults
from portone_recon.sandbox.scenario import CAUSES, FINDING_KINDS, Scenario, generate_merchant
from portone_recon.sandbox.world import (
    FAIL_REASONS,
    TEST_CARDS,
    CardBehaviour,
    SandboxBadRequest,
    SandboxNotFound,
    SandboxRefusal,
    SandboxUnauthorized,
    SandboxWorld,
    Webhook,
)

__all__ = [
    "CAUSES",
    "FAIL_REASONS",
    "FINDING_KINDS",
    "TEST_CARDS",
    "CardBehaviour",
    "Faults",
    "SandboxBadRequest",
    "SandboxClock",
    "SandboxNotFound",
    "SandboxRefusal",
    "SandboxUnauthorized",
    "SandboxWorld",
    "Scenario",
    "Webhook",
    "generate_merchant",
    "kst",
]
