-- Shared billing-period arithmetic for every reconciliation rule (Asia/Seoul business time).
--
-- A monthly billing period of a subscription with anchor day A starts on A of each month, clamped at the
-- month end (A = 31: 31 Jan, 28/29 Feb, 31 Mar). The clamped date is computed from the anchor every time,
-- never by stepping from the previous clamped date. Periods are numbered by a month index
-- (year * 12 + month - 1) of the month in which they start; with interval_months = n > 1, periods are
-- counted in blocks of n months from base_mi (the month index the subscription started in).

-- The KST calendar date of an instant. Asia/Seoul has been UTC+09:00 without DST since 1988, so this is
-- plain epoch arithmetic: several times cheaper than an ICU time-zone conversion per row, and independent
-- of the session's TimeZone setting.
CREATE OR REPLACE TEMP MACRO recon_kst_date(ts) AS
    CAST(DATE '1970-01-01' + CAST(floor((epoch(ts) + 32400) / 86400) AS INTEGER) AS DATE);

-- The month index of a date: year * 12 + month - 1.
CREATE OR REPLACE TEMP MACRO recon_month_index(d) AS (year(d) * 12 + month(d) - 1);

-- The billing date in the month with index mi for anchor day `anchor`, clamped at month end.
CREATE OR REPLACE TEMP MACRO recon_anchored_date(mi, anchor) AS make_date(
    CAST(mi // 12 AS BIGINT),
    CAST(mi % 12 + 1 AS BIGINT),
    CAST(least(anchor, day(last_day(make_date(CAST(mi // 12 AS BIGINT), CAST(mi % 12 + 1 AS BIGINT), 1))))
         AS BIGINT));

-- The month index in which the monthly period containing instant ts began.
CREATE OR REPLACE TEMP MACRO recon_period_month(ts, anchor) AS (
    recon_month_index(recon_kst_date(ts))
    - CASE WHEN day(recon_kst_date(ts)) < least(anchor, day(last_day(recon_kst_date(ts)))) THEN 1 ELSE 0 END);

-- The billing period number of instant ts (n-month periods counted from base_mi).
CREATE OR REPLACE TEMP MACRO recon_period(ts, anchor, interval_months, base_mi) AS
    CAST(floor((recon_period_month(ts, anchor) - base_mi) / interval_months) AS BIGINT);

-- First KST day of billing period p (inclusive) and of the next one (exclusive end).
CREATE OR REPLACE TEMP MACRO recon_period_start(p, anchor, interval_months, base_mi) AS
    recon_anchored_date(base_mi + p * interval_months, anchor);
CREATE OR REPLACE TEMP MACRO recon_period_end(p, anchor, interval_months, base_mi) AS
    recon_anchored_date(base_mi + (p + 1) * interval_months, anchor);

-- Add n months to an instant the way billing does: the anchored date of the target month, same wall time.
CREATE OR REPLACE TEMP MACRO recon_add_interval(ts, anchor, n) AS
    timezone('Asia/Seoul',
             recon_anchored_date(recon_month_index(recon_kst_date(ts)) + n, anchor)
             + (timezone('Asia/Seoul', ts) - CAST(recon_kst_date(ts) AS TIMESTAMP)));

-- A stable short id for a finding: the same kind and keys give the same id in every run.
CREATE OR REPLACE TEMP MACRO recon_finding_id(kind, k) AS substr(md5(kind || '|' || coalesce(k, '')), 1, 16);

-- Human text for `detail`: '9,900 KRW' and '2026-11-27 10:00 KST'.
CREATE OR REPLACE TEMP MACRO recon_money(amount, currency) AS
    coalesce(format('{:,}', amount) || ' ' || coalesce(currency, 'KRW'), '?');
CREATE OR REPLACE TEMP MACRO recon_kst(ts) AS
    coalesce(strftime(timezone('Asia/Seoul', ts), '%Y-%m-%d %H:%M') || ' KST', '?');
