"""Scenario generator: a subscription merchant run month by month through the sandbox, with labelled faults.

:func:`generate_merchant` plays a Korean subscription business (KRW plans, Korean buyers, anchor days
1..31, Asia/Seoul business hours) against a :class:`~portone_recon.sandbox.world.SandboxWorld`, with the
merchant's side simulated exactly as PortOne's recipe has it:

* sign-up: issue a billing key, charge the first month with ``again``, book the next renewal;
* paid webhook: re-fetch the payment, check the amount, mark the local order paid, book the next renewal
  (``sub-<customer_uid>-<YYYYMM>`` at the anchor date, 10:00 KST, clamped at month end);
* failed webhook: mark the order failed and book a retry ``<base>-r<n>`` one day later (at most 3);
* churn: cancel the subscription locally and unschedule its pending schedule.

Each finding kind of design.md §5 is injected by breaking that loop the way real life breaks it (a lost
webhook, a handler that crashes half-way, a tampered amount, a console refund, ...). ``labels`` is the
complete ground truth at ``as_of`` (grace 15 min): one row per finding the rules must report, including
the knock-on findings of an injection (same ``cause``). Ordinary card declines are recovered by the retry
policy before ``as_of`` and are not labelled.

Speed: past months are built in bulk — the same event order as :meth:`SandboxWorld.advance` (schedules by
``(schedule_at, merchant_uid)``, then the merchant's own actions), the world's own payment builder and
decline decision, but without per-call locking and request validation. ``_engine="world"`` drives every
event through the world's public operations instead; both leave the same :meth:`SandboxWorld.snapshot`
(tested).
"""

from __future__ import annotations

import gc
import heapq
import html
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from portone_recon._time import KST, add_months, anchored_date, to_unix
from portone_recon.errors import SandboxError
from portone_recon.reconcile.kinds import FINDING_KINDS
from portone_recon.sandbox import _scenario_data as catalogue
from portone_recon.sandbox.world import CardBehaviour, SandboxRefusal, SandboxWorld, Webhook

#: How each kind is injected (causes alternate when a kind has several).
CAUSES: dict[str, tuple[str, ...]] = {
    "missed_webhook": ("webhook_lost",),
    "amount_mismatch": ("amount_tampered",),
    "phantom_paid": ("failed_charge_marked_paid",),
    "refund_not_reflected": ("console_refund_partial", "console_refund_full"),
    "unknown_payment": ("order_insert_rolled_back",),
    "unpaid_renewal": ("failed_webhook_lost", "handler_crashed_on_failure"),
    "missing_next_schedule": ("handler_crashed_after_paid",),
    "duplicate_schedule": ("double_booking",),
    "orphan_schedule": ("cancelled_with_schedule_left", "billing_key_deleted"),
    "duplicate_charge": ("manual_charge_twice",),
    "schedule_amount_mismatch": ("price_changed_schedule_kept",),
    "charged_after_cancel": ("cancelled_order_charged", "renewal_after_cancel"),
    "chain_not_started": ("handler_crashed_after_signup",),
}

DEFAULT_END = datetime(2026, 11, 27, 6, 0, tzinfo=KST)
GRACE_SECONDS = 15 * 60
RENEWAL_HOUR = 10
RETRY_DELAY = 86_400
MAX_RETRIES = 3

LABEL_COLUMNS = ("kind", "customer_uid", "merchant_uid", "imp_uid", "schedule_merchant_uid", "cause")

#: The label column that identifies a finding of each kind: compare a reconciler's findings on it.
MATCH_KEY: dict[str, str] = {
    "missed_webhook": "merchant_uid",
    "amount_mismatch": "merchant_uid",
    "phantom_paid": "merchant_uid",
    "refund_not_reflected": "merchant_uid",
    "unknown_payment": "imp_uid",
    "duplicate_charge": "imp_uid",
    "unpaid_renewal": "schedule_merchant_uid",
    "duplicate_schedule": "schedule_merchant_uid",
    "orphan_schedule": "schedule_merchant_uid",
    "schedule_amount_mismatch": "schedule_merchant_uid",
    "missing_next_schedule": "customer_uid",
    "charged_after_cancel": "merchant_uid",
    "chain_not_started": "customer_uid",
}

# order record slots (a list per merchant_uid, for speed)
_CIDX, _AMT, _ST, _IMP, _PAID, _REF, _KIND, _YM, _RETRY, _ORDERED = range(10)
_SIGNUP, _RENEWAL, _RETRY_ORDER, _MANUAL, _ADDON = 0, 1, 2, 3, 4
_BOOKS_NEXT = (_SIGNUP, _RENEWAL, _RETRY_ORDER)  # a paid order of these kinds books the next renewal

#: Billing intervals (months) and the share of subscribers on each; a quarter costs 3 months less 5%,
#: a year 10 months.
INTERVALS: tuple[tuple[int, float], ...] = ((1, 0.85), (3, 0.10), (12, 0.05))
TRIAL_RATE = 0.12  # sign-ups with a free first interval (no charge until the first renewal)
SECOND_RATE = 0.05  # customers who add a second subscription (catalogue.SIDE_PLAN) on the same card
_SIDE = -1  # plan_idx of the side plan

_DAY = 86_400
_RECEIPT = "https://npg.nicepay.co.kr/issue/IssueLoader.do?type=0&TID={}"


def _interval_price(monthly: int, interval: int) -> int:
    """The price of one billing interval: a quarter is three months less 5% (to 100 won), a year ten."""
    if interval == 1:
        return monthly
    if interval == 12:
        return monthly * 10
    return monthly * interval * 95 // 100 // 100 * 100


_AUTO = "_auto"  # anomalies key: choose the default counts from the number of established subscribers


def _default_anomalies() -> dict[str, int]:
    return {_AUTO: 1}


def _ym(d: date) -> int:
    return d.year * 12 + d.month - 1


def _ym_text(ym: int) -> str:
    return f"{ym // 12:04d}{ym % 12 + 1:02d}"


def _months_before(end: datetime, months: int) -> datetime:
    y, m = add_months(end.year, end.month, -months)
    return end.replace(year=y, month=m, day=anchored_date(y, m, end.day).day)


@dataclass(eq=False)
class Scenario:
    """A generated merchant: the sandbox world, the local books and the ground-truth labels.

    Attributes:
        world: the simulator, its clock at ``as_of`` (no webhook sink attached any more).
        orders: local orders, canonical columns (see :data:`portone_recon.orders.ORDER_COLUMNS`).
        subscriptions: local subscriptions (see :data:`portone_recon.orders.SUBSCRIPTION_COLUMNS`).
        labels: one row per finding the reconciler must report at ``as_of`` (see :data:`LABEL_COLUMNS`).
        as_of: the instant the labels hold at (grace 15 min).
        start: when the business started (the world's initial clock).
        seed: the seed everything derives from.
        params: the arguments, timings and extra facts (``inside_grace``, ``declines``, ...).
    """

    world: SandboxWorld
    orders: pd.DataFrame
    subscriptions: pd.DataFrame
    labels: pd.DataFrame
    as_of: datetime
    start: datetime
    seed: int
    params: dict[str, Any] = field(default_factory=dict)

    def write(self, folder: str | Path, *, format: Literal["csv", "parquet"] = "csv") -> dict[str, Path]:
        """Write orders, subscriptions and labels as ``<name>.csv`` or ``<name>.parquet`` in ``folder``."""
        if format not in ("csv", "parquet"):
            raise SandboxError(f"Scenario.write: format must be 'csv' or 'parquet', got {format!r}")
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for name, frame in (
            ("orders", self.orders),
            ("subscriptions", self.subscriptions),
            ("labels", self.labels),
        ):
            path = out / f"{name}.{format}"
            if format == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
            paths[name] = path
        return paths

    def summary(self) -> dict[str, Any]:
        """Headline numbers: subscribers, payments, schedules, orders, labels by kind."""
        subs = self.subscriptions
        return {
            "seed": self.seed,
            "start": self.start.isoformat(),
            "as_of": self.as_of.isoformat(),
            "subscribers": int(subs["customer_uid"].nunique()),
            "subscriptions": len(subs),
            "active_subscriptions": int((subs["status"] == "active").sum()),
            "payments": len(self.world.payments),
            "schedules": len(self.world.schedules),
            "orders": len(self.orders),
            "labels": len(self.labels),
            "labels_by_kind": {
                str(k): int(v) for k, v in self.labels["kind"].value_counts().sort_index().items()
            },
            "declines_recovered": int(self.params.get("declines", 0)),
            "seconds": self.params.get("seconds"),
        }

    def to_dict(self) -> dict[str, Any]:
        """Same as :meth:`summary` (JSON-ready)."""
        return self.summary()

    def __repr__(self) -> str:
        return (
            f"Scenario(subscribers={self.subscriptions['customer_uid'].nunique()}, seed={self.seed}, "
            f"as_of={self.as_of.isoformat()}, "
            f"payments={len(self.world.payments)}, orders={len(self.orders)}, labels={len(self.labels)})"
        )

    def _repr_html_(self) -> str:
        try:
            s = self.summary()
            by_kind = s.pop("labels_by_kind")
            rows = "".join(
                f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in s.items()
            )
            kinds = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in by_kind.items())
            return (
                f"<table><caption>Scenario</caption>{rows}</table>"
                f"<table><caption>labels</caption><tr><th>kind</th><th>rows</th></tr>{kinds}</table>"
            )
        except Exception:  # _repr_html_ must never raise
            return f"<pre>{html.escape(object.__repr__(self))}</pre>"


# ---------------------------------------------------------------------------------------------- plan
@dataclass
class _Injection:
    kind: str
    cause: str
    cidx: int
    ym: int = 0  # the billing period concerned (renewal month)
    at: int = 0  # when the merchant/support action happens (unix), 0 if none
    amount: int = 0


@dataclass
class _Plan:
    n: int
    start_u: int
    as_of_u: int
    cus: list[str]
    signup: list[int]
    anchor: list[int]
    signup_ym: list[int]
    plan_idx: list[int]
    names: list[str]
    emails: list[str]
    tels: list[str]
    cards: list[str]
    expiries: list[str]
    births: list[str]
    churn_at: dict[int, int]
    churn_delete_key: set[int]
    declines: dict[int, tuple[frozenset[int], str]]
    injections: list[_Injection]
    inside_grace: tuple[int, int, int] | None  # (cidx, ym, op time)
    interval: list[int] = field(default_factory=list)
    trial: set[int] = field(default_factory=set)
    churn_mode: dict[int, str] = field(default_factory=dict)  # now | period_end | pause
    addons: list[tuple[int, int, bool, bool]] = field(default_factory=list)  # (cidx, at, exact, order)
    issuance: set[int] = field(default_factory=set)
    test_payments: list[tuple[int, int]] = field(default_factory=list)  # (cidx, at)
    sync_from: int = 0  # injections act after it (orders before it may lie outside a synced range)
    sub_ids: list[str] = field(default_factory=list)  # subscription id of each index (cus: the card)
    second: set[int] = field(default_factory=set)  # indices of second subscriptions on a shared card
    shared: set[int] = field(default_factory=set)  # every index on a card with two subscriptions
    anomalies: dict[str, int] = field(default_factory=dict)  # injections per kind, as planned
    lapsed: dict[int, int] = field(default_factory=dict)  # dunning churn: cidx -> the period never paid
    renew_cache: dict[int, int] = field(default_factory=dict)

    def renew_at(self, ym: int, anchor: int) -> int:
        """Unix time of the renewal for period ``ym`` (anchor date, 10:00 KST, clamped at month end)."""
        key = ym * 32 + anchor
        v = self.renew_cache.get(key)
        if v is None:
            y, m0 = divmod(ym, 12)
            d = anchored_date(y, m0 + 1, anchor)
            v = to_unix(datetime(d.year, d.month, d.day, RENEWAL_HOUR, tzinfo=KST))
            self.renew_cache[key] = v
        return v

    def due_periods(self, cidx: int, limit: int) -> list[int]:
        """Renewal periods of a customer whose renewal time is at or before ``limit``."""
        out: list[int] = []
        iv = self.interval[cidx]
        ym = self.signup_ym[cidx] + iv
        a = self.anchor[cidx]
        while self.renew_at(ym, a) <= limit:
            out.append(ym)
            ym += iv
        return out

    def charge_number(self, cidx: int, ym: int) -> int:
        """Which charge on the card the renewal of period ``ym`` is (the sign-up charge is number 1)."""
        k = (ym - self.signup_ym[cidx]) // self.interval[cidx]
        return k if cidx in self.trial else k + 1


def _business_time(rng: np.random.Generator, lo: int, hi: int) -> int:
    """A unix time in [lo, hi) nudged into 09:00-21:59 KST when the window allows it."""
    if hi <= lo + 1:
        return lo
    for _ in range(8):
        t = int(rng.integers(lo, hi))
        hour = ((t + 9 * 3600) % _DAY) // 3600
        if 9 <= hour < 22:
            return t
    return int(rng.integers(lo, hi))


def _pick_recent(rng: np.random.Generator, periods: list[int]) -> int:
    """Mostly the last or second-last period, sometimes an older one."""
    if len(periods) == 1:
        return periods[0]
    r = rng.random()
    if r < 0.45:
        return periods[-1]
    if r < 0.75 or len(periods) == 2:
        return periods[-2]
    return periods[int(rng.integers(0, len(periods) - 2))]


def _build_plan(
    n: int,
    months: int,
    seed: int,
    anomalies: Mapping[str, int],
    end: datetime,
    decline_rate: float,
    sync_from: datetime | None = None,
) -> _Plan:
    rng = np.random.default_rng([seed, 20261127])
    start = _months_before(end, months)
    start_u, as_of_u = to_unix(start), to_unix(end)
    day0 = start.astimezone(KST).date()
    midnight0 = to_unix(day0)
    total_days = (end.astimezone(KST).date() - day0).days
    first = max(1, min(30, total_days // 2))
    late_hi = max(first + 1, total_days - 2)
    initial = rng.random(n) < 0.8
    day = np.where(initial, rng.integers(0, first, n), rng.integers(first, late_hi, n))
    sec = rng.integers(8 * 3600, 23 * 3600, n)
    signup_u = np.maximum(midnight0 + day * _DAY + sec, start_u + 60)
    signup_u = np.minimum(signup_u, as_of_u - 2 * _DAY)
    order = np.argsort(signup_u, kind="stable")  # customer ids follow sign-up order
    signup_u = signup_u[order]
    local = pd.to_datetime(signup_u, unit="s", utc=True).tz_convert(KST)
    anchors = [int(x) for x in local.day]
    signup_ym = [int(y) * 12 + int(m) - 1 for y, m in zip(local.year, local.month, strict=True)]
    width = max(6, len(str(n)))
    cus = [f"cus_{i + 1:0{width}d}" for i in range(n)]
    plan_idx = rng.choice(len(catalogue.PLANS), n, p=np.array(catalogue.PLAN_WEIGHTS)).tolist()
    sur = rng.integers(0, len(catalogue.SURNAMES), n)
    giv = rng.integers(0, len(catalogue.GIVEN_NAMES), n)
    names = [catalogue.SURNAMES[a] + catalogue.GIVEN_NAMES[b] for a, b in zip(sur, giv, strict=True)]
    domains = ("naver.com", "gmail.com", "kakao.com", "daum.net")
    dom = rng.integers(0, len(domains), n)
    emails = [f"haru{i + 1}@{domains[d]}" for i, d in enumerate(dom)]
    tel_a, tel_b = rng.integers(1000, 10000, n), rng.integers(1000, 10000, n)
    tels = [f"010-{a}-{b}" for a, b in zip(tel_a, tel_b, strict=True)]
    pre = rng.integers(0, len(catalogue.CARD_PREFIXES), n)
    rest = rng.integers(0, 10**12, n)
    cards = [f"{catalogue.CARD_PREFIXES[p]}{r:012d}" for p, r in zip(pre, rest, strict=True)]
    exp_y, exp_m = rng.integers(2029, 2033, n), rng.integers(1, 13, n)
    expiries = [f"{y}-{m:02d}" for y, m in zip(exp_y, exp_m, strict=True)]
    b_y, b_m, b_d = rng.integers(60, 100, n), rng.integers(1, 13, n), rng.integers(1, 29, n)
    births = [f"{y:02d}{m:02d}{d:02d}" for y, m, d in zip(b_y, b_m, b_d, strict=True)]

    plan = _Plan(
        n=n,
        start_u=start_u,
        as_of_u=as_of_u,
        cus=cus,
        signup=[int(x) for x in signup_u],
        anchor=anchors,
        signup_ym=signup_ym,
        plan_idx=[int(x) for x in plan_idx],
        names=names,
        emails=emails,
        tels=tels,
        cards=cards,
        expiries=expiries,
        births=births,
        churn_at={},
        churn_delete_key=set(),
        declines={},
        injections=[],
        inside_grace=None,
    )
    ivs = np.array([iv for iv, _ in INTERVALS])
    plan.interval = [int(x) for x in rng.choice(ivs, n, p=np.array([w for _, w in INTERVALS]))]
    plan.trial = {int(c) for c in np.nonzero(rng.random(n) < TRIAL_RATE)[0]}
    plan.sub_ids = list(cus)
    _plan_second_subscriptions(plan, rng)
    plan.sync_from = start_u if sync_from is None else max(start_u, to_unix(sync_from))
    plan.anomalies = dict(anomalies)
    special = _plan_anomalies(plan, rng, anomalies)
    _plan_churn_and_declines(plan, rng, special, decline_rate)
    _plan_variety(plan, rng, special)
    return plan


def _plan_second_subscriptions(plan: _Plan, rng: np.random.Generator) -> None:
    """Some customers add the side plan on the same card later: a new index sharing their customer_uid,
    with its own subscription id (``<customer_uid>-2``), sign-up charge, renewal day and schedules. Cards
    with two subscriptions get no injected anomaly, no planned decline and no key deletion (a decline is
    planned per card, by charge number)."""
    n, as_of = plan.n, plan.as_of_u
    draw = rng.random(n) < SECOND_RATE
    owners = [c for c in np.nonzero(draw)[0].tolist() if plan.signup[c] < as_of - 40 * _DAY]
    delays = rng.integers(_DAY, 30 * _DAY, len(owners))
    for o, delay in zip(owners, delays.tolist(), strict=True):
        j = plan.n
        at = min(plan.signup[o] + int(delay), as_of - 2 * _DAY)
        local = datetime.fromtimestamp(at, tz=KST)
        plan.n += 1
        plan.cus.append(plan.cus[o])
        plan.sub_ids.append(f"{plan.cus[o]}-2")
        plan.signup.append(at)
        plan.anchor.append(local.day)
        plan.signup_ym.append(local.year * 12 + local.month - 1)
        plan.plan_idx.append(_SIDE)
        for seq in (plan.names, plan.emails, plan.tels, plan.cards, plan.expiries, plan.births):
            seq.append(seq[o])
        plan.interval.append(1)
        plan.second.add(j)
        plan.shared.update((o, j))


def _plan_of(p: int) -> tuple[str, str, int]:
    """(code, receipt name, monthly price) of a plan index (``_SIDE``: the side plan)."""
    return catalogue.SIDE_PLAN if p == _SIDE else catalogue.PLANS[p]


def _plan_anomalies(plan: _Plan, rng: np.random.Generator, anomalies: Mapping[str, int]) -> set[int]:
    """Choose distinct customers and periods for every injection (and the inside-grace schedule)."""
    as_of = plan.as_of_u
    done_limit = as_of - GRACE_SECONDS - 3600  # executions the rules must already see
    pool_cut = as_of - 62 * _DAY  # at least two renewals behind them (checked per customer below)
    # injections go to monthly subscribers (their consequences land inside the history), after sync_from
    pool: list[int] = [
        int(i)
        for i in rng.permutation(plan.n)
        if plan.signup[int(i)] <= pool_cut and plan.interval[int(i)] == 1 and int(i) not in plan.shared
    ]
    visible = plan.sync_from + 2 * _DAY

    def recent(periods: list[int], c: int) -> list[int]:
        return [ym for ym in periods if plan.renew_at(ym - 1, plan.anchor[c]) >= visible]

    used: set[int] = set()
    pos = 0

    def take(ok: Callable[[int], bool]) -> int | None:
        nonlocal pos
        for j in range(pos, len(pool)):
            c = pool[j]
            if c not in used and ok(c):
                used.add(c)
                if j == pos:
                    pos += 1
                return c
        return None

    # the latest renewal an injection may touch, per kind: its consequences must be due at as_of
    limits = {
        "refund_not_reflected": done_limit - 3600,
        "duplicate_charge": done_limit - 3 * 3600,
    }
    future_kinds = ("duplicate_schedule", "orphan_schedule", "schedule_amount_mismatch")

    def last_before_future(c: int) -> int:
        """The period whose renewal booked the first schedule still in the future at as_of."""
        periods = plan.due_periods(c, as_of + 60)
        return periods[-1] if periods else plan.signup_ym[c]

    def eligible(kind: str) -> Callable[[int], bool]:
        limit = limits.get(kind, done_limit)
        if kind in future_kinds:
            return lambda c: (
                len(recent(plan.due_periods(c, done_limit), c)) >= 2
                and plan.renew_at(last_before_future(c), plan.anchor[c]) + 3 * 3600 <= as_of
            )
        if kind == "chain_not_started":  # a paid sign-up whose first period ended a day (+ grace) ago
            return lambda c: (
                c not in plan.trial
                and plan.signup[c] >= visible
                and plan.renew_at(plan.signup_ym[c] + 1, plan.anchor[c]) + _DAY + GRACE_SECONDS + 3600
                <= as_of
            )
        return lambda c: len(recent(plan.due_periods(c, limit), c)) >= 2

    if anomalies.get(_AUTO):  # the default: 3 of each kind, fewer (at least 1) for a small merchant
        per_kind = min(3, max(1, len(pool) // (3 * len(FINDING_KINDS))))
        anomalies = dict.fromkeys(FINDING_KINDS, per_kind)
        plan.anomalies = anomalies
    for kind in FINDING_KINDS:
        count = int(anomalies.get(kind, 0))
        causes = CAUSES[kind]
        for j in range(count):
            cause = causes[j % len(causes)]
            c = take(eligible(kind))
            if c is None:
                raise SandboxError(
                    f"generate_merchant: not enough established subscribers for {kind} x{count} "
                    f"(subscribers={plan.n}); raise subscribers/months or lower the anomaly counts"
                )
            periods = recent(plan.due_periods(c, limits.get(kind, done_limit)), c)
            inj = _Injection(kind, cause, c)
            if kind in ("missed_webhook", "phantom_paid", "unpaid_renewal", "missing_next_schedule"):
                inj.ym = _pick_recent(rng, periods)
            elif kind == "amount_mismatch":
                inj.ym = _pick_recent(rng, periods)
                amount = catalogue.PLANS[plan.plan_idx[c]][2]
                inj.amount = amount // 10 // 10 * 10  # a wrong amount (tens of won)
            elif kind == "refund_not_reflected":
                inj.ym = _pick_recent(rng, periods)
                run = plan.renew_at(inj.ym, plan.anchor[c])
                inj.at = _business_time(rng, run + 3600, min(run + 10 * _DAY, done_limit))
            elif kind == "duplicate_charge":
                inj.ym = _pick_recent(rng, periods)
                run = plan.renew_at(inj.ym, plan.anchor[c])
                nxt = plan.renew_at(inj.ym + 1, plan.anchor[c])
                inj.at = _business_time(rng, run + 2 * 3600, min(run + 3 * _DAY, nxt - 3600, done_limit))
            elif kind == "unknown_payment":
                lo = max(plan.signup[c] + _DAY, as_of - (60 if rng.random() < 0.8 else 180) * _DAY, visible)
                inj.at = _business_time(rng, lo, done_limit)
                # an add-on, or (every other one) a purchase of exactly the plan's price: index -1
                inj.amount = -1 if j % 2 else int(rng.integers(0, len(catalogue.ADDONS)))
            elif kind == "chain_not_started":
                inj.ym = plan.signup_ym[c]
            elif kind == "charged_after_cancel":
                inj.ym = _pick_recent(rng, periods)
                prev = (
                    plan.renew_at(inj.ym - 1, plan.anchor[c])
                    if inj.ym - 1 > plan.signup_ym[c]
                    else plan.signup[c]
                )
                inj.at = _business_time(rng, prev + 3600, plan.renew_at(inj.ym, plan.anchor[c]) - 3600)
            else:  # future-schedule kinds: act after the last renewal booked the next one
                last = last_before_future(c)
                inj.ym = last + 1
                inj.at = _business_time(rng, plan.renew_at(last, plan.anchor[c]) + 3600, as_of - 3600)
                if kind == "schedule_amount_mismatch":
                    p = plan.plan_idx[c]
                    inj.amount = catalogue.PLANS[(p + 1) % len(catalogue.PLANS)][2]
            plan.injections.append(inj)
    # one paid schedule still inside the grace period at as_of (its webhook lost): not a finding yet
    as_of_local = datetime.fromtimestamp(as_of, tz=KST)
    target = as_of - 10 * 60
    if datetime.fromtimestamp(target, tz=KST).date() == as_of_local.date():
        ym_now = _ym(as_of_local.date())

        def grace_ok(c: int) -> bool:
            return (
                plan.interval[c] == 1
                and anchored_date(as_of_local.year, as_of_local.month, plan.anchor[c]) == as_of_local.date()
                and plan.renew_at(ym_now, plan.anchor[c]) > target
                and plan.signup_ym[c] < ym_now - 1
            )

        c = take(grace_ok)
        if c is not None:
            prev_run = plan.renew_at(ym_now - 1, plan.anchor[c])
            plan.inside_grace = (
                c,
                ym_now,
                _business_time(rng, max(prev_run + 3600, as_of - 5 * _DAY), target),
            )
    return used


def _plan_churn_and_declines(
    plan: _Plan, rng: np.random.Generator, special: set[int], decline_rate: float
) -> None:
    """Churn and ordinary declines that the retry policy recovers before as_of.

    Churn comes four ways: cancelled now (the pending schedule unscheduled, sometimes the card deleted),
    cancelled at period end (the booked renewal unscheduled; ``cancelled_at`` is the end of the paid
    period, maybe after as_of), paused (the pending schedule unscheduled, no cancellation), and lapsed
    (a renewal and all its retries decline; the merchant simply books nothing more and cancels).
    """
    n, as_of = plan.n, plan.as_of_u
    k_churn = rng.geometric(0.015, n) - 1  # renewals paid before the subscriber leaves
    churn_u = rng.random(n)
    churn_del = rng.random(n) < 0.3
    mode_u = rng.random(n)
    width = (as_of - plan.start_u) // (28 * _DAY) + 2  # more renewals than anyone can have
    dec = rng.random((n, width)) < decline_rate
    double = rng.random((n, width)) < 0.2
    reasons = rng.integers(0, len(catalogue.DECLINE_REASONS), n)
    churn_at: dict[int, int] = {}
    for c in np.nonzero(k_churn < width)[0].tolist():
        if c in special:
            continue
        k = int(k_churn[c])
        a = plan.anchor[c]
        iv = plan.interval[c]
        lo = plan.signup[c] if k == 0 else plan.renew_at(plan.signup_ym[c] + k * iv, a)
        hi = plan.renew_at(plan.signup_ym[c] + (k + 1) * iv, a)
        t = lo + 3600 + int(churn_u[c] * (hi - lo - 7200))
        if t >= as_of - _DAY:
            continue
        churn_at[c] = t
        mode = "now" if mode_u[c] < 0.6 else "period_end" if mode_u[c] < 0.85 else "pause"
        plan.churn_mode[c] = mode
        if churn_del[c] and mode == "now" and c not in plan.shared:
            plan.churn_delete_key.add(c)
    # announced cancellations: 1% cancel at the end of the period running at as_of (still active then)
    late = rng.random(n) < 0.01
    late_u = rng.random(n)
    for c in np.nonzero(late)[0].tolist():
        if c in special or c in churn_at or c in plan.trial:
            continue
        due = plan.due_periods(c, as_of - 2 * _DAY)
        last = due[-1] if due else plan.signup_ym[c]
        lo = (plan.renew_at(last, plan.anchor[c]) if due else plan.signup[c]) + 3600
        if plan.renew_at(last + plan.interval[c], plan.anchor[c]) > as_of and lo < as_of - _DAY:
            churn_at[c] = lo + int(late_u[c] * (as_of - _DAY - lo))
            plan.churn_mode[c] = "period_end"
    plan.churn_at = churn_at
    rows, cols = np.nonzero(dec)
    by_customer: dict[int, list[int]] = {}
    for c, j in zip(rows.tolist(), cols.tolist(), strict=True):
        if c not in special and c not in plan.shared:
            by_customer.setdefault(c, []).append(j)
    for c, js in by_customer.items():
        a = plan.anchor[c]
        nths: set[int] = set()
        extra = 0  # charges added by earlier declines (their retries)
        for j in sorted(js):
            k = j + 1  # renewal number
            ym = plan.signup_ym[c] + k * plan.interval[c]
            run = plan.renew_at(ym, a)
            fails = 2 if double[c, j] else 1
            if run + fails * RETRY_DELAY + 3600 > as_of - GRACE_SECONDS:
                break
            if c in churn_at and run + fails * RETRY_DELAY + 3600 > churn_at[c]:
                break
            first = plan.charge_number(c, ym) + extra
            nths.update(range(first, first + fails))
            extra += fails
        if nths:
            plan.declines[c] = (frozenset(nths), catalogue.DECLINE_REASONS[int(reasons[c])])
    # dunning churn: 1% decline a renewal and every retry; the merchant stops booking and cancels
    lapse = rng.random(n) < 0.01
    lapse_pick = rng.random(n)
    for c in np.nonzero(lapse)[0].tolist():
        if c in special or c in plan.shared or c in churn_at or c in plan.declines:
            continue
        due = [
            ym
            for ym in plan.due_periods(c, as_of - GRACE_SECONDS - MAX_RETRIES * RETRY_DELAY - 2 * 3600)
            if plan.renew_at(ym, plan.anchor[c]) >= plan.sync_from
        ]
        if not due:
            continue
        ym = due[int(lapse_pick[c] * len(due))]
        first = plan.charge_number(c, ym)
        plan.declines[c] = (
            frozenset(range(first, first + MAX_RETRIES + 1)),
            catalogue.DECLINE_REASONS[int(reasons[c])],
        )
        plan.lapsed[c] = ym


def _plan_variety(plan: _Plan, rng: np.random.Generator, special: set[int]) -> None:
    """What real merchants have besides renewals: add-on purchases with orders on the stored card (half of
    them of exactly the plan's price), billing-key issuance transactions, test-channel payments.

    Add-on buyers have no planned decline (a purchase is one more charge on the card and would move which
    charge declines).
    """
    n, as_of = plan.n, plan.as_of_u
    buyers = rng.random(n) < 0.06
    exact = rng.random(n) < 0.5
    when = rng.random(n)
    for c in np.nonzero(buyers)[0].tolist():
        if c in special or c in plan.declines or c in plan.second:
            continue
        lo = max(plan.signup[c] + _DAY, plan.sync_from)
        hi = min(as_of - _DAY, plan.churn_at.get(c, as_of) - 3600)
        if hi <= lo:
            continue
        plan.addons.append((c, lo + int(when[c] * (hi - lo)), bool(exact[c]), True))
    plan.issuance = {int(c) for c in np.nonzero(rng.random(n) < 0.4)[0]} - plan.second
    testers = rng.random(n) < 0.02
    t_when = rng.random(n)
    for c in np.nonzero(testers)[0].tolist():
        lo, hi = plan.signup[c] + 3600, as_of - 3600
        if hi > lo:
            plan.test_payments.append((c, lo + int(t_when[c] * (hi - lo))))


# ---------------------------------------------------------------------------------------------- run
class _Run:
    """The merchant's side plus the event loop (bulk or through the world's operations)."""

    def __init__(self, plan: _Plan, world: SandboxWorld, *, bulk: bool, progress: bool) -> None:
        self.plan = plan
        self.world = world
        self.bulk = bulk
        self.progress = progress
        n = plan.n
        self.sub_amount = [
            _interval_price(_plan_of(p)[2], iv) for p, iv in zip(plan.plan_idx, plan.interval, strict=True)
        ]
        self.plan_name = [_plan_of(p)[1] for p in plan.plan_idx]
        self.sub_active = [True] * n
        self.sub_status = ["active"] * n
        self.cancelled_at = [0] * n
        self.next_mu: list[str | None] = [None] * n
        self.orders: dict[str, list[Any]] = {}
        self.stmpl: dict[int, dict[str, Any]] = {}
        self.ptmpl: dict[int, dict[str, Any]] = {}
        self.ym_texts: dict[int, str] = {}
        self.cidx = {cu: i for i, cu in enumerate(plan.cus)}
        # bulk event queue: a heap of distinct instants, and per instant its events (kind, key, seq)
        self.times: list[int] = []
        self.buckets: dict[int, list[tuple[int, str, int]]] = {}
        self.specials: list[tuple[int, int, Callable[[], None]]] = []
        self.amount_alerts: list[str] = []
        # faults of the merchant's handler, keyed by merchant_uid
        self.crash_after_paid: set[str] = set()
        self.crash_on_failure: set[str] = set()
        self.marked_paid: set[str] = set()
        self.tamper: dict[str, int] = {}
        self.label_specs: list[dict[str, Any]] = []
        self.inside_grace_mu: str | None = None

    # ---- keys
    def mu(self, c: int, ym: int) -> str:
        text = self.ym_texts.get(ym)
        if text is None:
            text = self.ym_texts[ym] = _ym_text(ym)
        return f"sub-{self.plan.sub_ids[c]}-{text}"

    # ---- world access
    def _book(self, c: int, mu: str, at: int, amount: int, name: str) -> bool:
        """POST /subscribe/payments/schedule for one entry; False when PortOne refuses."""
        w = self.world
        cu = self.plan.cus[c]
        if not self.bulk:
            try:
                w.create_schedules(
                    cu, [{"merchant_uid": mu, "schedule_at": at, "amount": amount, "name": name}]
                )
            except SandboxRefusal:
                return False
            return True
        if cu not in w.billing_keys or mu in w.schedules:
            return False
        tmpl = self.stmpl.get(c)
        if tmpl is None:
            tmpl = w._schedule_json(
                cu, {"merchant_uid": mu, "schedule_at": w.now, "amount": 1}, 0, w.billing_keys[cu]
            )
            self.stmpl[c] = tmpl
        s = tmpl.copy()
        s["merchant_uid"] = mu
        s["schedule_at"] = at
        s["amount"] = amount
        s["name"] = name
        w.schedules[mu] = s
        self._enqueue(at, 0, mu, 0)
        return True

    def _enqueue(self, at: int, kind: int, key: str, seq: int) -> None:
        bucket = self.buckets.get(at)
        if bucket is None:
            self.buckets[at] = [(kind, key, seq)]
            heapq.heappush(self.times, at)
        else:
            bucket.append((kind, key, seq))

    def _payment_template(self, c: int) -> dict[str, Any]:
        """The world's own payment JSON for this customer; per-charge fields are overwritten."""
        tmpl = self.ptmpl.get(c)
        if tmpl is None:
            w = self.world
            counter = w._imp_counter
            tmpl = w._build_payment(
                customer_uid=self.plan.cus[c],
                merchant_uid="-",
                amount=1,
                name=None,
                currency="KRW",
                usage="payment.scheduled",
                buyer={},
                custom_data=None,
                fail_reason=None,
            )
            w._imp_counter = counter  # a template, not a payment: give the id back
            self.ptmpl[c] = tmpl
        return tmpl

    def _charge_bulk(self, c: int, mu: str, amount: int, name: str | None, usage: str) -> dict[str, Any]:
        """What :meth:`SandboxWorld._build_payment` + ``add_payment`` do, from a per-customer template.

        Only for payments whose buyer fields come from the billing key (our schedules copy them from
        the key, ``again`` calls send none); the bulk-vs-world snapshot test keeps this exact.
        """
        w = self.world
        reason = w._decide(self.plan.cus[c])
        imp = w.new_imp_uid()
        n = w._imp_counter
        now = w.clock.now_unix
        tmpl = self.ptmpl.get(c) or self._payment_template(c)
        pg_tid = f"{tmpl['pg_id']}01{n:012d}"
        paid = reason is None
        p = tmpl.copy()  # copy + item sets: about twice as fast as {**tmpl, ...}
        p["imp_uid"] = imp
        p["merchant_uid"] = mu
        p["pg_tid"] = pg_tid
        p["apply_num"] = f"{(n * 7919 + 31) % 10**8:08d}" if paid else None
        p["name"] = name
        p["amount"] = amount
        p["status"] = "paid" if paid else "failed"
        p["started_at"] = now
        p["paid_at"] = now if paid else 0
        p["failed_at"] = 0 if paid else now
        p["fail_reason"] = reason
        p["receipt_url"] = _RECEIPT.format(pg_tid) if paid else None
        p["cancel_history"] = []
        p["cancel_receipt_urls"] = []
        p["customer_uid_usage"] = usage
        w.payments[imp] = p
        ids = w.payment_ids_by_merchant_uid.get(mu)
        if ids is None:
            w.payment_ids_by_merchant_uid[mu] = [imp]
        else:
            ids.append(imp)
        return p

    def _fire_bulk(self, url: str | None, body: dict[str, Any]) -> None:
        """What :meth:`SandboxWorld._fire` + ``_deliver`` do for an in-process sink (no loss rate)."""
        w = self.world
        drop = w.drop_webhooks_for
        dropped = body["imp_uid"] in drop or body["merchant_uid"] in drop
        hook = Webhook(url=url or w.default_notice_url, body=body, at=w.clock.now_unix, dropped=dropped)
        w.outbox.append(hook)
        if not dropped:
            self.on_webhook(hook)
            hook.delivered = True

    def _execute_bulk(self, c: int, s: dict[str, Any]) -> None:
        """What :meth:`SandboxWorld._execute` does, without locks (webhook delivered right after)."""
        w = self.world
        mu = s["merchant_uid"]
        p = self._charge_bulk(c, mu, int(s["amount"]), s["name"], "payment.scheduled")
        imp = p["imp_uid"]
        status = p["status"]
        s.update(
            schedule_status="executed",
            executed_at=w.clock.now_unix,
            revoked_at=0,
            imp_uid=imp,
            payment_status=status,
            fail_reason=p["fail_reason"],
        )
        self._fire_bulk(
            w.schedule_notice_urls.get(mu), {"imp_uid": imp, "merchant_uid": mu, "status": status}
        )

    def _pay_again(self, c: int, mu: str, amount: int, name: str) -> dict[str, Any]:
        """``again`` for the merchant: the world's operation, or its bulk equivalent."""
        w = self.world
        cu = self.plan.cus[c]
        if not self.bulk or cu not in w.billing_keys or mu in w.payment_ids_by_merchant_uid:
            return w.pay_again(customer_uid=cu, merchant_uid=mu, amount=amount, name=name)
        p = self._charge_bulk(c, mu, amount, name, "payment")
        if p["status"] == "paid":  # a failed again sends no webhook
            self._fire_bulk(None, {"imp_uid": p["imp_uid"], "merchant_uid": mu, "status": "paid"})
        return p

    # ---- the merchant's webhook handler (PortOne's recipe, with the injected bugs)
    def on_webhook(self, hook: Webhook) -> None:
        body = hook.body
        status = body.get("status")
        if status != "paid" and status != "failed":
            return  # cancellation notices are not handled: console refunds never reach the books
        mu = body["merchant_uid"]
        order = self.orders.get(mu)
        if order is None:
            return  # no local order (e.g. its insert was rolled back)
        p = self.world.payments.get(body["imp_uid"])  # re-fetch GET /payments/{imp_uid}
        if p is None:
            return
        if p["status"] == "paid":
            if order[_ST] == "paid":
                return  # duplicate delivery
            if order[_ST] == "cancelled":  # the customer skipped this one: ignore it, keep the chain going
                if order[_KIND] in _BOOKS_NEXT:
                    self.book_renewal(order[_CIDX], order[_YM] + self.plan.interval[order[_CIDX]])
                return
            if p["amount"] != order[_AMT] or p["currency"] != "KRW":
                self.amount_alerts.append(mu)  # never mark a mismatched amount paid; stop for review
                return
            order[_ST] = "paid"
            order[_IMP] = p["imp_uid"]
            order[_PAID] = p["paid_at"]
            if mu in self.crash_after_paid:
                return
            if order[_KIND] in _BOOKS_NEXT:
                self.book_renewal(order[_CIDX], order[_YM] + self.plan.interval[order[_CIDX]])
        elif p["status"] == "failed":
            if order[_ST] != "pending":
                return
            now = self.world.clock.now_unix
            if mu in self.marked_paid:  # the bug: treats "code 0" as success
                order[_ST] = "paid"
                order[_IMP] = p["imp_uid"]
                order[_PAID] = now
                self.book_renewal(order[_CIDX], order[_YM] + self.plan.interval[order[_CIDX]])
                return
            order[_ST] = "failed"
            order[_IMP] = p["imp_uid"]
            if mu in self.crash_on_failure:
                return
            c = order[_CIDX]
            retry = order[_RETRY]
            if retry >= MAX_RETRIES and self.sub_active[c]:
                # dunning gave up: the subscription lapses; nothing more is booked, nothing is revoked
                self._cancel_locally(c)
                return
            if retry < MAX_RETRIES and self.sub_active[c]:
                base = self.mu(c, order[_YM])
                rmu = f"{base}-r{retry + 1}"
                if self._book(c, rmu, now + RETRY_DELAY, order[_AMT], self.plan_name[c]):
                    self.orders[rmu] = [
                        c,
                        order[_AMT],
                        "pending",
                        None,
                        0,
                        0,
                        _RETRY_ORDER,
                        order[_YM],
                        retry + 1,
                        now,
                    ]
                    self.next_mu[c] = rmu

    def book_renewal(self, c: int, ym: int) -> None:
        """Book period ``ym`` (idempotent: the merchant_uid is deterministic)."""
        if not self.sub_active[c]:
            return
        mu = self.mu(c, ym)
        if mu in self.orders:
            return
        amount = self.sub_amount[c]
        at = self.plan.renew_at(ym, self.plan.anchor[c])
        if self._book(c, mu, at, self.tamper.get(mu, amount) if self.tamper else amount, self.plan_name[c]):
            self.orders[mu] = [c, amount, "pending", None, 0, 0, _RENEWAL, ym, 0, self.world.clock.now_unix]
            self.next_mu[c] = mu

    # ---- merchant / support actions (specials)
    def signup(self, c: int) -> None:
        plan, w = self.plan, self.world
        cu = plan.cus[c]
        decl = plan.declines.get(c)
        behaviour = CardBehaviour.decline_nth(*sorted(decl[0]), reason=decl[1]) if decl else None
        if c in plan.second:  # a second subscription on the card the customer already registered
            self._first_charge(c)
            return
        w.issue_billing_key(
            cu,
            card_number=plan.cards[c],
            expiry=plan.expiries[c],
            birth=plan.births[c],
            behaviour=behaviour,
            customer_name=plan.names[c],
            customer_email=plan.emails[c],
            customer_tel=plan.tels[c],
        )
        ym = plan.signup_ym[c]
        if c in plan.issuance:  # the issuance transaction PortOne records for the new key (no order)
            p0 = w._build_payment(
                customer_uid=cu,
                merchant_uid=f"issue-{cu}",
                amount=0,
                name="정기구독 카드 등록",
                currency="KRW",
                usage="issue",
                buyer={},
                custom_data=None,
                fail_reason=None,
            )
            w.add_payment(p0)
        if c in plan.trial:  # a free first interval: the first charge is the first renewal
            self.book_renewal(c, ym + plan.interval[c])
            return
        self._first_charge(c)

    def _first_charge(self, c: int) -> None:
        """Charge the first interval now with ``again``; the paid webhook books the first renewal."""
        plan, w = self.plan, self.world
        ym = plan.signup_ym[c]
        mu = self.mu(c, ym)
        self.orders[mu] = [c, self.sub_amount[c], "pending", None, 0, 0, _SIGNUP, ym, 0, w.clock.now_unix]
        p = self._pay_again(c, mu, self.sub_amount[c], self.plan_name[c])
        order = self.orders[mu]
        if p["status"] == "paid" and order[_ST] == "pending":  # the webhook may have done it already
            order[_ST], order[_IMP], order[_PAID] = "paid", p["imp_uid"], p["paid_at"]
            if mu not in self.crash_after_paid:
                self.book_renewal(c, ym + plan.interval[c])

    def churn(self, c: int, delete_key: bool) -> None:
        w = self.world
        mode = self.plan.churn_mode.get(c, "now")
        self.sub_active[c] = False
        mu = self.next_mu[c]
        booked = w.schedules.get(mu) if mu is not None else None
        pending = booked is not None and booked["schedule_status"] == "scheduled"
        if mode == "pause":
            self.sub_status[c] = "paused"
        else:
            self.sub_status[c] = "cancelled"
            # cancelled at period end: the paid period runs out when its next renewal would have run
            end = int(booked["schedule_at"]) if mode == "period_end" and booked is not None and pending else 0
            self.cancelled_at[c] = end or w.clock.now_unix
        if pending and mu is not None:
            w.unschedule(merchant_uids=[mu])
            self.orders[mu][_ST] = "cancelled"
        if delete_key:
            w.delete_billing_key(self.plan.cus[c], reason="구독 해지")

    # ---- injections
    def inject(self, inj: _Injection) -> None:
        plan, w = self.plan, self.world
        c = inj.cidx
        cu = plan.cus[c]
        base = self.mu(c, inj.ym) if inj.ym else None

        def label(kind: str, **keys: Any) -> None:
            self.label_specs.append({"kind": kind, "cause": inj.cause, "cidx": c, **keys})

        if inj.cause == "webhook_lost":
            assert base is not None
            w.drop_webhooks_for.add(base)
            label("missed_webhook", mu=base, smu=base)
            label("missing_next_schedule", smu=base)
        elif inj.cause == "amount_tampered":
            assert base is not None
            self.tamper[base] = inj.amount
            label("amount_mismatch", mu=base, smu=base)
            label("missing_next_schedule", smu=base)
        elif inj.cause == "failed_charge_marked_paid":
            assert base is not None
            self._decline_period(c, inj.ym)
            self.marked_paid.add(base)
            label("phantom_paid", mu=base, smu=base)
            label("unpaid_renewal", mu=base, smu=base)
        elif inj.cause in ("failed_webhook_lost", "handler_crashed_on_failure"):
            assert base is not None
            self._decline_period(c, inj.ym)
            if inj.cause == "failed_webhook_lost":
                w.drop_webhooks_for.add(base)
            else:
                self.crash_on_failure.add(base)
            label("unpaid_renewal", mu=base, smu=base)
        elif inj.cause == "handler_crashed_after_paid":
            assert base is not None
            self.crash_after_paid.add(base)
            label("missing_next_schedule", smu=base)
        elif inj.cause.startswith("console_refund"):
            assert base is not None
            full = inj.cause.endswith("full")
            self._special(inj.at, lambda: self._console_refund(c, base, full))
            label("refund_not_reflected", mu=base, smu=base)
        elif inj.cause == "order_insert_rolled_back":
            self._special(inj.at, lambda: self._addon_without_order(c, inj))
        elif inj.cause == "manual_charge_twice":
            self._special(inj.at, lambda: self._manual_charge(c, inj))
        elif inj.cause == "double_booking":
            assert base is not None
            self._special(inj.at, lambda: self._double_book(c, base, inj))
            self.label_specs.append(
                {"kind": "duplicate_schedule", "cause": inj.cause, "cidx": c, "dup_of": base}
            )
        elif inj.cause == "cancelled_with_schedule_left":
            assert base is not None
            self._special(inj.at, lambda: self._cancel_locally(c))
            label("orphan_schedule", smu=base)
        elif inj.cause == "billing_key_deleted":
            assert base is not None
            self._special(inj.at, lambda: self._delete_key(cu))
            label("orphan_schedule", smu=base)
        elif inj.cause == "cancelled_order_charged":
            assert base is not None
            self._special(inj.at, lambda: self._cancel_order_locally(base))
            label("charged_after_cancel", mu=base, smu=base)
        elif inj.cause == "renewal_after_cancel":
            assert base is not None
            self._special(inj.at, lambda: self._cancel_locally(c))
            label("charged_after_cancel", mu=base, smu=base)
        elif inj.cause == "handler_crashed_after_signup":
            self.crash_after_paid.add(self.mu(c, plan.signup_ym[c]))
            label("chain_not_started")
        elif inj.cause == "price_changed_schedule_kept":
            assert base is not None
            self._special(inj.at, lambda: self.sub_amount.__setitem__(c, inj.amount))
            label("schedule_amount_mismatch", smu=base)
        else:  # pragma: no cover - CAUSES and this switch are kept together
            raise SandboxError(f"unknown cause {inj.cause!r}")

    def _decline_period(self, c: int, ym: int) -> None:
        """Make the renewal charge of period ``ym`` decline (the customer has no other extra charges)."""
        nth = self.plan.charge_number(c, ym)
        self.plan.declines[c] = (
            frozenset({nth}),
            catalogue.DECLINE_REASONS[c % len(catalogue.DECLINE_REASONS)],
        )

    def _console_refund(self, c: int, mu: str, full: bool) -> None:
        w = self.world
        imp = next(i for i in w.payment_ids_by_merchant_uid[mu] if w.payments[i]["status"] == "paid")
        amount = None if full else int(w.payments[imp]["amount"]) // 2 // 100 * 100
        reason = catalogue.SUPPORT_REFUND_REASONS[c % len(catalogue.SUPPORT_REFUND_REASONS)]
        w.cancel_payment(imp_uid=imp, amount=amount, reason=reason, from_console=True)

    def _addon_without_order(self, c: int, inj: _Injection) -> None:
        w = self.world
        name, price = catalogue.ADDONS[inj.amount] if inj.amount >= 0 else ("추가 구독권", self.sub_amount[c])
        stamp = datetime.fromtimestamp(w.clock.now_unix, tz=KST).strftime("%Y%m%d%H%M%S")
        mu = f"addon-{self.plan.cus[c]}-{stamp}"
        p = w.pay_again(customer_uid=self.plan.cus[c], merchant_uid=mu, amount=price, name=name)
        # the order insert ran in a transaction that was rolled back after the charge: no local order
        self.label_specs.append(
            {"kind": "unknown_payment", "cause": inj.cause, "cidx": c, "mu": mu, "imp": p["imp_uid"]}
        )

    def _manual_charge(self, c: int, inj: _Injection) -> None:
        w = self.world
        mu = f"{self.mu(c, inj.ym)}-m1"
        amount = self.sub_amount[c]
        self.orders[mu] = [c, amount, "pending", None, 0, 0, _MANUAL, inj.ym, 0, w.clock.now_unix]
        p = w.pay_again(customer_uid=self.plan.cus[c], merchant_uid=mu, amount=amount, name=self.plan_name[c])
        order = self.orders[mu]
        if p["status"] == "paid" and order[_ST] == "pending":
            order[_ST], order[_IMP], order[_PAID] = "paid", p["imp_uid"], p["paid_at"]
        self.label_specs.append(
            {"kind": "duplicate_charge", "cause": inj.cause, "cidx": c, "dup_charge_of": inj.ym}
        )

    def _double_book(self, c: int, base: str, inj: _Injection) -> None:
        s = self.world.schedules.get(base)
        if s is None or s["schedule_status"] != "scheduled":
            raise SandboxError(f"double_booking: {base} is not a pending schedule")
        mu = f"{base}-m"
        if self._book(c, mu, int(s["schedule_at"]), int(s["amount"]), self.plan_name[c]):
            self.orders[mu] = [
                c, int(s["amount"]), "pending", None, 0, 0, _MANUAL, inj.ym, 0, self.world.clock.now_unix
            ]  # fmt: skip

    def _delete_key(self, customer_uid: str) -> None:
        # the customer removed the card in the app; the merchant deleted the key but kept its schedule
        self.world.delete_billing_key(customer_uid, reason="고객 카드 삭제 요청")

    def _cancel_locally(self, c: int) -> None:
        self.sub_active[c] = False
        self.sub_status[c] = "cancelled"
        self.cancelled_at[c] = self.world.clock.now_unix

    def _cancel_order_locally(self, mu: str) -> None:
        # the customer skipped one renewal; the merchant cancelled the order but left its schedule booked
        order = self.orders.get(mu)
        if order is None or order[_ST] != "pending":
            raise SandboxError(f"cancelled_order_charged: {mu} is not a pending order")
        order[_ST] = "cancelled"

    def _addon(self, c: int, exact: bool) -> None:
        """An add-on bought with the stored card, with its order (naming no subscription)."""
        w = self.world
        name, price = catalogue.ADDONS[c % len(catalogue.ADDONS)]
        amount = self.sub_amount[c] if exact else price
        stamp = datetime.fromtimestamp(w.clock.now_unix, tz=KST).strftime("%Y%m%d%H%M%S")
        mu = f"addon-{self.plan.cus[c]}-{stamp}"
        self.orders[mu] = [c, amount, "pending", None, 0, 0, _ADDON, 0, 0, w.clock.now_unix]
        p = w.pay_again(customer_uid=self.plan.cus[c], merchant_uid=mu, amount=amount, name=name)
        order = self.orders[mu]
        if p["status"] == "paid" and order[_ST] == "pending":
            order[_ST], order[_IMP], order[_PAID] = "paid", p["imp_uid"], p["paid_at"]

    def _test_payment(self, c: int) -> None:
        """A payment through the test channel (a developer trying the card): never a charge."""
        w = self.world
        cu = self.plan.cus[c]
        p = w._build_payment(
            customer_uid=cu,
            merchant_uid=f"test-{cu}-{w.clock.now_unix}",
            amount=self.sub_amount[c],
            name="테스트 결제 (구독)",
            currency="KRW",
            usage="payment",
            buyer={},
            custom_data=None,
            fail_reason=None,
        )
        p["sandbox"] = True
        w.add_payment(p)

    def _inside_grace(self, c: int, ym: int) -> None:
        mu = self.mu(c, ym)
        w = self.world
        if w.schedules.get(mu, {}).get("schedule_status") != "scheduled":
            return
        w.update_schedule(mu, self.plan.as_of_u - 10 * 60)
        if self.bulk:
            self._enqueue(self.plan.as_of_u - 10 * 60, 0, mu, 0)
        w.drop_webhooks_for.add(mu)
        self.inside_grace_mu = mu

    # ---- the loop
    def _special(self, at: int, op: Callable[[], None]) -> None:
        self.specials.append((at, len(self.specials), op))

    def run(self) -> None:
        plan, w = self.plan, self.world
        for inj in plan.injections:  # before sign-ups: card behaviours are set at key issuance
            self.inject(inj)
        for c in range(plan.n):
            self._special(plan.signup[c], lambda c=c: self.signup(c))  # type: ignore[misc]
        for c, t in plan.churn_at.items():
            self._special(t, lambda c=c: self.churn(c, c in plan.churn_delete_key))  # type: ignore[misc]
        for c, t, exact, _ in plan.addons:
            self._special(t, lambda c=c, exact=exact: self._addon(c, exact))  # type: ignore[misc]
        for c, t in plan.test_payments:
            self._special(t, lambda c=c: self._test_payment(c))  # type: ignore[misc]
        if plan.inside_grace is not None:
            gc_, gym, gat = plan.inside_grace
            self._special(gat, lambda: self._inside_grace(gc_, gym))
        self.specials.sort(key=lambda x: (x[0], x[1]))
        total_days = max(1, (plan.as_of_u - plan.start_u) // _DAY)
        from tqdm.auto import tqdm

        bar = tqdm(total=total_days, unit="day", desc="scenario", disable=not self.progress, leave=False)
        shown = 0
        try:
            if self.bulk:
                self._run_bulk(bar, shown)
            else:
                for at, _, op in self.specials:
                    w.advance(to=datetime.fromtimestamp(at, tz=KST))
                    op()
                    day = (at - plan.start_u) // _DAY
                    if day > shown:
                        bar.update(day - shown)
                        shown = day
                w.advance(to=datetime.fromtimestamp(plan.as_of_u, tz=KST))
        finally:
            bar.close()

    def _run_bulk(self, bar: Any, shown: int) -> None:
        plan, w = self.plan, self.world
        for pos, (at, _, _) in enumerate(self.specials):  # specials are sorted: pos keeps their order
            self._enqueue(at, 1, "", pos)
        ops = [op for _, _, op in self.specials]
        schedules = w.schedules
        cidx = self.cidx
        clock = w.clock
        as_of = plan.as_of_u
        start = plan.start_u
        times, buckets = self.times, self.buckets
        pop = heapq.heappop
        while times and times[0] <= as_of:
            at = pop(times)
            bucket = buckets.pop(at)
            # what advance() does at one instant: due schedules by merchant_uid, then the merchant's actions
            bucket.sort()
            if at > clock.now_unix:
                clock.set_unix(at)
            for kind, mu, seq in bucket:
                if kind == 0:
                    s = schedules.get(mu)
                    if s is None or s["schedule_status"] != "scheduled" or s["schedule_at"] != at:
                        continue
                    self._execute_bulk(cidx[s["customer_uid"]], s)
                else:
                    ops[seq]()
            day = (at - start) // _DAY
            if day > shown:
                bar.update(day - shown)
                shown = day
        clock.set_unix(max(clock.now_unix, as_of))
        w.reindex()

    # ---- outputs
    def orders_frame(self) -> pd.DataFrame:
        cus = self.plan.cus
        sub_ids = self.plan.sub_ids
        items = self.orders
        recs = list(items.values())
        paid = np.fromiter((r[_PAID] for r in recs), dtype=np.int64, count=len(recs))
        paid_at = pd.Series(
            pd.to_datetime(np.where(paid > 0, paid, np.nan), unit="s", utc=True)
        ).dt.tz_convert(KST)
        return pd.DataFrame(
            {
                "merchant_uid": pd.Series(list(items.keys()), dtype="str"),
                "customer_uid": pd.Series([cus[r[_CIDX]] for r in recs], dtype="str"),
                "amount": np.fromiter((r[_AMT] for r in recs), dtype=np.int64, count=len(recs)),
                "status": pd.Series([r[_ST] for r in recs], dtype="str"),
                "imp_uid": pd.Series([r[_IMP] for r in recs], dtype="str"),
                "paid_at": paid_at,
                "refunded_amount": np.fromiter((r[_REF] for r in recs), dtype=np.int64, count=len(recs)),
                # subscription orders name their subscription; add-ons name none
                "subscription_id": pd.Series(
                    [None if r[_KIND] == _ADDON else sub_ids[r[_CIDX]] for r in recs], dtype="object"
                ),
                "ordered_at": pd.Series(
                    pd.to_datetime(
                        np.fromiter((r[_ORDERED] for r in recs), dtype=np.int64, count=len(recs)),
                        unit="s",
                        utc=True,
                    )
                ).dt.tz_convert(KST),
            }
        )

    def subscriptions_frame(self) -> pd.DataFrame:
        plan = self.plan
        cancelled = np.array(self.cancelled_at, dtype=np.int64)
        trial_end = np.array(
            [
                plan.renew_at(plan.signup_ym[c] + plan.interval[c], plan.anchor[c]) if c in plan.trial else 0
                for c in range(plan.n)
            ],
            dtype=np.int64,
        )
        status = [
            "trialing" if st == "active" and t > 0 and plan.as_of_u < t else st
            for st, t in zip(self.sub_status, trial_end.tolist(), strict=True)
        ]
        return pd.DataFrame(
            {
                "customer_uid": pd.Series(plan.cus, dtype="str"),
                "status": pd.Series(status, dtype="str"),
                "amount": np.array(self.sub_amount, dtype=np.int64),
                "interval_months": np.array(plan.interval, dtype=np.int64),
                "anchor_day": np.array(plan.anchor, dtype=np.int64),
                "started_at": pd.Series(
                    pd.to_datetime(np.array(plan.signup, dtype=np.int64), unit="s", utc=True)
                ).dt.tz_convert(KST),
                "cancelled_at": pd.Series(
                    pd.to_datetime(np.where(cancelled > 0, cancelled, np.nan), unit="s", utc=True)
                ).dt.tz_convert(KST),
                "subscription_id": pd.Series(plan.sub_ids, dtype="str"),
                "plan": pd.Series([_plan_of(p)[0] for p in plan.plan_idx], dtype="str"),
                "trial_ends_at": pd.Series(
                    pd.to_datetime(np.where(trial_end > 0, trial_end, np.nan), unit="s", utc=True)
                ).dt.tz_convert(KST),
            }
        )

    def labels_frame(self) -> pd.DataFrame:
        w, plan = self.world, self.plan
        rows: list[dict[str, Any]] = []

        def imp_of(mu: str, status: tuple[str, ...]) -> str | None:
            for i in reversed(w.payment_ids_by_merchant_uid.get(mu, [])):
                if w.payments[i]["status"] in status or (
                    "paid" in status and w.payments[i]["paid_at"] and w.payments[i]["status"] == "cancelled"
                ):
                    return i
            return None

        for spec in self.label_specs:
            kind = spec["kind"]
            cu = plan.cus[spec["cidx"]]
            row: dict[str, Any] = {
                "kind": kind,
                "customer_uid": cu,
                "merchant_uid": None,
                "imp_uid": None,
                "schedule_merchant_uid": None,
                "cause": spec["cause"],
            }
            if kind in ("missed_webhook", "amount_mismatch", "refund_not_reflected", "charged_after_cancel"):
                row["merchant_uid"] = spec["mu"]
                row["imp_uid"] = imp_of(spec["mu"], ("paid", "cancelled"))
                row["schedule_merchant_uid"] = spec["smu"]
            elif kind in ("phantom_paid", "unpaid_renewal"):
                row["merchant_uid"] = spec["mu"]
                row["imp_uid"] = imp_of(spec["mu"], ("failed",))
                row["schedule_merchant_uid"] = spec["smu"]
            elif kind == "missing_next_schedule":
                row["schedule_merchant_uid"] = spec["smu"]  # evidence: the last paid schedule
            elif kind == "chain_not_started":
                pass  # the subscription (customer_uid) is the key
            elif kind in ("orphan_schedule", "schedule_amount_mismatch"):
                row["schedule_merchant_uid"] = spec["smu"]
                row["merchant_uid"] = spec["smu"]
            elif kind == "unknown_payment":
                row["merchant_uid"] = spec["mu"]
                row["imp_uid"] = spec["imp"]
            elif kind == "duplicate_charge":
                mu = f"{self.mu(spec['cidx'], spec['dup_charge_of'])}-m1"
                row["merchant_uid"] = mu
                row["imp_uid"] = imp_of(mu, ("paid",))
            elif kind == "duplicate_schedule":
                extras = self._duplicate_extras(spec["cidx"], spec["dup_of"])
                for e in extras:
                    rows.append({**row, "merchant_uid": e, "schedule_merchant_uid": e})
                continue
            rows.append(row)
        frame = pd.DataFrame(rows, columns=list(LABEL_COLUMNS))
        for col in LABEL_COLUMNS:
            frame[col] = frame[col].astype("str")
        return frame

    def _duplicate_extras(self, c: int, base: str) -> list[str]:
        """Every scheduled schedule of the customer in base's period except the one to keep."""
        w = self.world
        amount = self.sub_amount[c]
        s0 = w.schedules[base]
        period = s0["schedule_at"]
        cands = [
            s
            for mu, s in ((base, s0), (f"{base}-m", w.schedules.get(f"{base}-m")))
            if s is not None and s["schedule_status"] == "scheduled" and abs(s["schedule_at"] - period) < _DAY
        ]
        cands.sort(key=lambda s: (s["amount"] != amount, s["schedule_at"], s["merchant_uid"]))
        return [s["merchant_uid"] for s in cands[1:]]


def generate_merchant(
    subscribers: int = 1000,
    months: int = 13,
    seed: int = 0,
    anomalies: Mapping[str, int] | None = None,
    *,
    end: datetime | None = None,
    decline_rate: float = 0.03,
    sync_from: datetime | None = None,
    progress: bool = False,
    _engine: Literal["bulk", "world"] = "bulk",
) -> Scenario:
    """Run a subscription merchant through the sandbox and return the world, the books and the labels.

    Args:
        subscribers: how many customers sign up over the period (ids ``cus_000001``... in sign-up order).
        months: length of the history before ``end``.
        seed: everything derives from it (same seed, same everything).
        anomalies: injections per finding kind (:data:`FINDING_KINDS`); None -> 3 of each (fewer, at least
            one, when too few subscribers are established for that). Knock-on
            findings are labelled too, so a kind can have more label rows than its count.
        end: ``as_of`` (aware); default 2026-11-27 06:00 KST.
        decline_rate: chance that a renewal charge is an ordinary decline (recovered by retries).
        sync_from: every injected problem happens after this instant, so a store synced from it (older
            orders outside the synced range) still holds every labelled finding; default: the start.
        progress: show a tqdm progress bar.
        _engine: ``"bulk"`` (fast) or ``"world"`` (every event through the world's operations).

    Returns:
        a :class:`Scenario`.

    Raises:
        SandboxError: bad arguments, or too few established subscribers for the requested anomalies.
    """
    as_of = end if end is not None else DEFAULT_END
    if as_of.tzinfo is None:
        raise SandboxError(f"generate_merchant: end={as_of!r} is naive; give a timezone (e.g. Asia/Seoul)")
    as_of = as_of.astimezone(KST).replace(microsecond=0)
    if not isinstance(subscribers, int) or subscribers < 1:
        raise SandboxError(f"generate_merchant: subscribers must be a positive int, got {subscribers!r}")
    if not isinstance(months, int) or not 1 <= months <= 120:
        raise SandboxError(f"generate_merchant: months must be within 1..120, got {months!r}")
    if not 0.0 <= decline_rate <= 0.5:
        raise SandboxError(f"generate_merchant: decline_rate must be within [0, 0.5], got {decline_rate}")
    wanted = _default_anomalies() if anomalies is None else dict(anomalies)
    for kind, count in wanted.items():
        if kind not in FINDING_KINDS and kind != _AUTO:
            raise SandboxError(
                f"generate_merchant: unknown anomaly kind {kind!r} (known: {', '.join(FINDING_KINDS)})"
            )
        if not isinstance(count, int) or count < 0:
            raise SandboxError(f"generate_merchant: anomalies[{kind!r}] must be an int >= 0, got {count!r}")
    if _engine not in ("bulk", "world"):
        raise SandboxError(f"generate_merchant: _engine must be 'bulk' or 'world', got {_engine!r}")
    t0 = time.perf_counter()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of small dicts: the cyclic GC would rescan them again and again
    try:
        plan = _build_plan(subscribers, months, seed, wanted, as_of, decline_rate, sync_from)
        start = datetime.fromtimestamp(plan.start_u, tz=KST)
        world = SandboxWorld(start=start, seed=seed)
        run = _Run(plan, world, bulk=_engine == "bulk", progress=progress)
        world.webhook_sink = run.on_webhook
        run.run()
        world.webhook_sink = None
        orders = run.orders_frame()
        subs = run.subscriptions_frame()
        labels = run.labels_frame()
    finally:
        if gc_was_enabled:
            gc.enable()
    inside = None
    if run.inside_grace_mu is not None:
        mu = run.inside_grace_mu
        s = world.schedules[mu]
        inside = {
            "customer_uid": s["customer_uid"],
            "merchant_uid": mu,
            "imp_uid": s["imp_uid"],
            "executed_at": datetime.fromtimestamp(int(s["executed_at"]), tz=KST).isoformat()
            if s["executed_at"]
            else None,
        }
    injected = {i.cidx for i in plan.injections}
    params: dict[str, Any] = {
        "subscribers": subscribers,
        "months": months,
        "seed": seed,
        "anomalies": plan.anomalies,
        "decline_rate": decline_rate,
        "end": as_of.isoformat(),
        "grace_seconds": GRACE_SECONDS,
        "renewal_hour_kst": RENEWAL_HOUR,
        "retry_delay_seconds": RETRY_DELAY,
        "max_retries": MAX_RETRIES,
        "engine": _engine,
        "inside_grace": inside,
        "declines": sum(
            len(v[0]) for c, v in plan.declines.items() if c not in injected and c not in plan.lapsed
        ),
        "churned": len(plan.churn_at),
        "paused": sum(1 for m in plan.churn_mode.values() if m == "pause"),
        "cancel_at_period_end": sum(1 for m in plan.churn_mode.values() if m == "period_end"),
        "intervals": {str(iv): plan.interval.count(iv) for iv, _ in INTERVALS},
        "trials": len(plan.trial),
        "second_subscriptions": len(plan.second),
        "lapsed": sorted(plan.cus[c] for c in plan.lapsed),
        "addons_with_orders": len(plan.addons),
        "issuance_payments": len(plan.issuance),
        "test_payments": len(plan.test_payments),
        "sync_from": datetime.fromtimestamp(plan.sync_from, tz=KST).isoformat(),
        "amount_alerts": list(run.amount_alerts),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return Scenario(
        world=world,
        orders=orders,
        subscriptions=subs,
        labels=labels,
        as_of=as_of,
        start=start,
        seed=seed,
        params=params,
    )


__all__ = ["CAUSES", "DEFAULT_END", "FINDING_KINDS", "MATCH_KEY", "Scenario", "generate_merchant"]
