-- What people decided about a finding (by its stable finding_id), with history: every acknowledge,
-- explanation, un-acknowledge and "resolved, so cleared" is a row; the latest row of a finding is its
-- state. state: acknowledged | explained | wont_fix (in effect), open (un-acknowledged), resolved (the
-- finding left the data; a later re-appearance starts open). until: the last KST day an
-- acknowledgement holds (NULL: no end).

CREATE SEQUENCE finding_triage_seq;

CREATE TABLE finding_triage (
    seq          BIGINT PRIMARY KEY DEFAULT nextval('finding_triage_seq'),
    finding_id   VARCHAR NOT NULL,
    kind         VARCHAR,
    state        VARCHAR NOT NULL,
    note         VARCHAR,
    actor        VARCHAR,          -- who (the `by` of acknowledge)
    decided_at   TIMESTAMPTZ NOT NULL,
    until        DATE,
    run_id       VARCHAR
);
