"""PortOne's official Python SDK as a peer: pointed at the V2 sandbox, it lists, fetches, schedules, pays
and revokes without a parse error (its parser is strict: a missing required field raises ValueError)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from v2_world import START, mixed_world

from portone_recon.sandbox.server import SandboxServer
from portone_recon.sandbox.v2_api import SandboxV2, rfc3339

sdk = pytest.importorskip("portone_server_sdk")
from portone_server_sdk.common import CustomerInput, PageInput, PaymentAmountInput  # noqa: E402
from portone_server_sdk.errors import PaymentNotFoundError, PgProviderError  # noqa: E402
from portone_server_sdk.payment import FailedPayment, PaidPayment, PaymentFilterInput  # noqa: E402
from portone_server_sdk.payment.payment_schedule import (  # noqa: E402
    BillingKeyPaymentScheduleInput,
    PaymentScheduleFilterInput,
)


@pytest.fixture
def served() -> Iterator[tuple[SandboxV2, str]]:
    w, v2 = mixed_world()
    server = SandboxServer(w, v2=v2)
    server.start_background()
    try:
        yield v2, server.base_url
    finally:
        server.stop()


def test_the_official_sdk_reads_and_writes_through_the_sandbox(served: tuple[SandboxV2, str]) -> None:
    v2, base = served
    client = sdk.PortOneClient(secret="sandbox_v2_secret", base_url=base, store_id=v2.store_id)
    lo, hi = (
        rfc3339(int((START - timedelta(days=1)).timestamp())),
        rfc3339(int((START + timedelta(days=80)).timestamp())),
    )
    listing = client.payment.get_payments(
        page=PageInput(number=0, size=100), filter=PaymentFilterInput(from_=lo, until=hi)
    )
    assert listing.page.total_count == len(listing.items) > 10
    kinds = {type(p).__name__ for p in listing.items}
    assert {"PaidPayment", "FailedPayment"} <= kinds
    one = client.payment.get_payment(payment_id=listing.items[0].id)
    assert one.id == listing.items[0].id
    with pytest.raises(PaymentNotFoundError):
        client.payment.get_payment(payment_id="no/such")
    far = rfc3339(int((START + timedelta(days=400)).timestamp()))
    scheds = client.payment.payment_schedule.get_payment_schedules(
        page=PageInput(number=0, size=100), filter=PaymentScheduleFilterInput(from_=lo, until=far)
    )
    kinds = {type(s).__name__ for s in scheds.items}
    assert {"ScheduledPaymentSchedule", "SucceededPaymentSchedule", "FailedPaymentSchedule"} <= kinds
    key = v2.billing_key_of("v2_cust_0")
    made = client.payment.payment_schedule.create_payment_schedule(
        payment_id="sdk-rebook-1",
        payment=BillingKeyPaymentScheduleInput(
            billing_key=key,
            order_name="월간",
            amount=PaymentAmountInput(total=8900),
            currency="KRW",
            customer=CustomerInput(id="v2_cust_0"),
            store_id=v2.store_id,
        ),
        time_to_pay=rfc3339(int((START + timedelta(days=200)).timestamp())),
    )
    assert made.schedule.id == "schedule-sdk-rebook-1"
    paid = client.payment.pay_with_billing_key(
        payment_id="sdk-addon-1",
        billing_key=key,
        order_name="추가",
        amount=PaymentAmountInput(total=1100),
        currency="KRW",
    )
    assert paid.payment.pg_tx_id
    assert isinstance(client.payment.get_payment(payment_id="sdk-addon-1"), PaidPayment)
    revoked = client.payment.payment_schedule.revoke_payment_schedules(schedule_ids=["schedule-sdk-rebook-1"])
    assert revoked.revoked_schedule_ids == ["schedule-sdk-rebook-1"]
    # A declined card: 502 PG_PROVIDER, and the payment reads back FAILED.
    with pytest.raises(PgProviderError):
        client.payment.pay_with_billing_key(
            payment_id="sdk-declined", billing_key=v2.billing_key_of("v2_cust_3"), order_name="x",
            amount=PaymentAmountInput(total=500), currency="KRW",
        )  # fmt: skip
    assert isinstance(client.payment.get_payment(payment_id="sdk-declined"), FailedPayment)
