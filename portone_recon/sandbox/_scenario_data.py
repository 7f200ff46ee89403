"""Static catalogues for the scenario generator: Korean names, plans, cards, decline reasons."""

from __future__ import annotations

# (plan code, product name shown on the receipt, monthly price in KRW)
PLANS: tuple[tuple[str, str, int], ...] = (
    ("basic", "하루커피 베이직 월간 구독", 9_900),
    ("standard", "하루커피 스탠다드 월간 구독", 14_900),
    ("premium", "하루커피 프리미엄 월간 구독", 19_900),
    ("family", "하루커피 패밀리 월간 구독", 29_900),
)
# Share of subscribers on each plan (same order as PLANS).
PLAN_WEIGHTS: tuple[float, ...] = (0.45, 0.30, 0.18, 0.07)

# A second subscription some customers add on the same card (its own schedules and renewal day).
SIDE_PLAN: tuple[str, str, int] = ("beans", "하루커피 원두 정기배송 구독", 6_900)

ADDONS: tuple[tuple[str, int], ...] = (
    ("원두 추가 200g", 6_500),
    ("드립백 10개 추가", 4_800),
    ("텀블러 굿즈", 23_000),
)

SURNAMES: tuple[str, ...] = (
    "김", "이", "박", "최", "정", "강", "조", "윤", "장", "임",
    "한", "오", "서", "신", "권", "황", "안", "송", "류", "홍",
)  # fmt: skip
GIVEN_NAMES: tuple[str, ...] = (
    "민준", "서연", "도윤", "하은", "시우", "지우", "예준", "서윤", "하준", "지민",
    "주원", "수아", "지호", "지유", "준서", "채원", "현우", "다은", "건우", "은서",
    "우진", "예린", "선우", "수빈", "유준", "지아", "연우", "소율", "정우", "하린",
)  # fmt: skip

# Test card numbers whose first digits pick the card company in the sandbox.
CARD_PREFIXES: tuple[str, ...] = ("4092", "5365", "9410", "4579", "5570", "9490", "4364")

DECLINE_REASONS: tuple[str, ...] = (
    "[F113] 카드 한도초과",
    "[F112] 잔액부족",
    "[F105] 거래정지 카드",
    "[F102] 유효기간 오류",
)

SUPPORT_REFUND_REASONS: tuple[str, ...] = ("고객 요청 환불", "서비스 불만족 환불", "중복 결제 환불 요청")
