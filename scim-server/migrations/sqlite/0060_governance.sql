-- Governance (sqlite; kept in step with the other dialect): the durable schedule every governance
-- feature shares, the governance event record, and access reviews with their items and the
-- exceptions they leave behind. Times are milliseconds since the Unix epoch; JSON is TEXT.

-- Work due at a time (a review's start, reminders and due date; time-bound grants' expiry):
-- claimed by compare-and-swap on the lease columns, done once done_at_ms is set.
CREATE TABLE gov_schedule (
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    run_at_ms INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    done_at_ms INTEGER,
    CONSTRAINT gov_schedule_pkey PRIMARY KEY (id)
);
CREATE INDEX gov_schedule_due ON gov_schedule (done_at_ms, run_at_ms);
CREATE INDEX gov_schedule_subject ON gov_schedule (tenant_id, subject_id);

-- What governance did and decided, in order (decisions, exceptions, applications,
-- notifications): the record an auditor reads next to the change log.
CREATE TABLE gov_events (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL,
    CONSTRAINT gov_events_pkey PRIMARY KEY (tenant_id, id)
);
CREATE INDEX gov_events_subject ON gov_events (tenant_id, subject_id, at_ms);

-- Access review campaigns. spec: scope, reviewers, reminders, default decision, auto-apply,
-- inactivity threshold (JSON). status: scheduled -> active -> completed -> applied.
CREATE TABLE gov_reviews (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    starts_at_ms INTEGER NOT NULL,
    due_at_ms INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    started_at_ms INTEGER,
    completed_at_ms INTEGER,
    applied_at_ms INTEGER,
    CONSTRAINT gov_reviews_pkey PRIMARY KEY (tenant_id, id)
);

-- One holder of one reviewed grant, as read from Graph when the review started.
CREATE TABLE gov_review_items (
    tenant_id TEXT NOT NULL,
    review_id TEXT NOT NULL,
    id TEXT NOT NULL,
    target TEXT NOT NULL,
    target_label TEXT NOT NULL,
    graph_user_id TEXT NOT NULL,
    user_principal_name TEXT,
    display_name TEXT,
    scim_user_id TEXT,
    assignment_id TEXT,
    reviewer TEXT NOT NULL,
    reviewer_email TEXT,
    last_sign_in_ms INTEGER,
    rule_derived INTEGER NOT NULL,
    recommendation TEXT NOT NULL,
    recommendation_reason TEXT NOT NULL,
    decision TEXT,
    justification TEXT,
    decided_by TEXT,
    decided_at_ms INTEGER,
    outcome TEXT,
    outcome_detail TEXT,
    applied_at_ms INTEGER,
    CONSTRAINT gov_review_items_pkey PRIMARY KEY (tenant_id, review_id, id)
);
CREATE INDEX gov_review_items_reviewer ON gov_review_items (tenant_id, review_id, reviewer);

-- A grant the rules derive but a review revoked: the bridge's planner leaves it out while the
-- exception is active (removed_at_ms NULL). Removing it is recorded, never a DELETE.
CREATE TABLE gov_exceptions (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    scim_user_id TEXT NOT NULL,
    grant_kind TEXT NOT NULL,
    grant_name TEXT NOT NULL,
    reason TEXT NOT NULL,
    review_id TEXT,
    item_id TEXT,
    created_at_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    removed_at_ms INTEGER,
    removed_by TEXT,
    CONSTRAINT gov_exceptions_pkey PRIMARY KEY (tenant_id, id)
);
CREATE INDEX gov_exceptions_user ON gov_exceptions (tenant_id, scim_user_id, removed_at_ms);
