-- Outcome callbacks (sqlite; kept in step with the other dialect). Written only by
-- scim_server::inbound::callback*. Times are nanoseconds since the Unix epoch.

-- The durable outbox of callback deliveries: one row per message, its id the Standard Webhooks
-- `webhook-id` (derived from what it reports, so reporting twice queues it once). The row is
-- its own lease, like inbound_jobs.
CREATE TABLE callback_deliveries (
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- the exact body sent (JSON text)
    payload TEXT NOT NULL,
    -- pending | delivered | dead
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ns INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until_ns INTEGER,
    last_error TEXT,
    created_ns INTEGER NOT NULL,
    finished_ns INTEGER,
    CONSTRAINT callback_deliveries_pkey PRIMARY KEY (id)
);
CREATE INDEX callback_deliveries_due ON callback_deliveries (status, next_attempt_ns);
CREATE INDEX callback_deliveries_tenant ON callback_deliveries (tenant_id, created_ns);

-- Users written by an intake job whose Graph outcome is still to be reported: reported once
-- the bridge settles a plan computed from the user at min_version or later.
CREATE TABLE callback_awaiting_bridge (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    min_version INTEGER NOT NULL,
    external_id TEXT,
    event_id TEXT,
    created_ns INTEGER NOT NULL,
    CONSTRAINT callback_awaiting_bridge_pkey PRIMARY KEY (tenant_id, user_id, job_id)
);

-- The bridge's last settled plan per user (of tenants with a callback), so a job finishing after
-- the bridge already settled its user is reported at once. Writers of both sides lock the
-- user's row first, so neither misses the other.
CREATE TABLE callback_bridge_settled (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    -- -1 until the bridge has settled a plan of this user
    scim_version INTEGER NOT NULL,
    outcome TEXT,
    detail TEXT,
    kind TEXT,
    steps INTEGER NOT NULL DEFAULT 0,
    at_ns INTEGER NOT NULL,
    CONSTRAINT callback_bridge_settled_pkey PRIMARY KEY (tenant_id, user_id)
);
