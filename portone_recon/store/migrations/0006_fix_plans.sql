-- Every fix plan that was made, as the planner made it: apply accepts a plan only when it equals one of
-- these (same actions, same digest), so an edited plan file never reaches PortOne. origin: findings (made
-- by the planner from a stored reconciliation run) or manual (a person's one-off reverify/rebook).

CREATE TABLE fix_plans (
    plan_id        VARCHAR PRIMARY KEY,
    digest         VARCHAR NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    run_id         VARCHAR,
    as_of          TIMESTAMPTZ,
    origin         VARCHAR NOT NULL,
    params         JSON,
    actions        JSON NOT NULL,
    action_count   INTEGER NOT NULL
);

-- The plan an action was last journaled for: an action skipped by one plan (not needed then, nothing
-- sent) is evaluated again when a later plan holds it; succeeded and failed stay final.
ALTER TABLE actions ADD COLUMN plan_id VARCHAR;
