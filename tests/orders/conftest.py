"""Orders fixtures: a Korean merchant's export (column names and statuses) and its mapping."""

from __future__ import annotations

import pandas as pd
import pytest

from portone_recon.orders import ColumnMapping

KOREAN_MAPPING = {
    "columns": {
        "merchant_uid": "주문번호",
        "customer_uid": "고객번호",
        "amount": "결제금액",
        "status": "주문상태",
        "imp_uid": "결제번호",
        "paid_at": "결제일시",
        "refunded_amount": "환불금액",
    },
    "statuses": {
        "결제완료": "paid",
        "결제대기": "pending",
        "결제실패": "failed",
        "주문취소": "cancelled",
        "환불완료": "refunded",
    },
}


@pytest.fixture
def mapping() -> ColumnMapping:
    return ColumnMapping.from_dict(KOREAN_MAPPING)


@pytest.fixture
def korean_orders() -> pd.DataFrame:
    """Five orders as a Korean shop exports them (all text, like a CSV)."""
    return pd.DataFrame(
        {
            "주문번호": ["주문-0001", "주문-0002", "주문-0003", "주문-0004", "주문-0005"],
            "고객번호": ["고객_김철수", "고객_이영희", "고객_박민수", "고객_김철수", "고객_최지우"],
            "결제금액": ["9900", "19,900", "1000000", "9900", "0"],
            "주문상태": ["결제완료", "결제대기", "환불완료", "결제실패", "주문취소"],
            "결제번호": ["imp_001", "", "imp_003", "", ""],
            "결제일시": ["2026-11-01 00:30:00", "", "2026-10-31T15:30:00Z", "", ""],
            "환불금액": ["0", "", "1000000", "", "0"],
        }
    )
