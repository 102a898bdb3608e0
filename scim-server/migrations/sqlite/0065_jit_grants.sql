-- Time-bound (just-in-time) grants (sqlite; kept in step with the other dialect). Written only by
-- scim_server::governance::jit; every change commits with its gov_schedule entries (start and
-- expiry) and gov_events records. Times are milliseconds since the Unix epoch.

-- One request and its life: pending -> active (approved; held from starts_at to expires_at)
-- -> expired | revoked, or pending -> denied. extends names the grant an extension continues.
CREATE TABLE gov_jit_grants (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    grant_ref TEXT NOT NULL,
    duration_seconds INTEGER NOT NULL,
    justification TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_at_ms INTEGER,
    note TEXT,
    starts_at_ms INTEGER,
    expires_at_ms INTEGER,
    extends TEXT,
    CONSTRAINT gov_jit_grants_pkey PRIMARY KEY (tenant_id, id)
);
CREATE INDEX gov_jit_grants_user ON gov_jit_grants (tenant_id, user_id, status);
CREATE INDEX gov_jit_grants_requested ON gov_jit_grants (tenant_id, requested_at_ms);

-- The grants `[governance.jit]` policies say are held only through a time-bound grant
-- (only_jit), written at start-up so the bridge's planner sees them in whichever process it runs.
CREATE TABLE gov_jit_only (
    grant_ref TEXT NOT NULL,
    CONSTRAINT gov_jit_only_pkey PRIMARY KEY (grant_ref)
);
