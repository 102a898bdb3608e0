-- Leaver evidence (sqlite; kept in step with the other dialect): one record per leaver whose
-- revocation the bridge completed, stored as built (record_json) with the SHA-256 of that text;
-- chain_seq names the governance.leaver_evidence event in scim_changes carrying the digest.
CREATE TABLE gov_leaver_evidence (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    completed_plan_id TEXT NOT NULL,
    revoked_at_ms INTEGER,
    built_at_ms INTEGER NOT NULL,
    record_json TEXT NOT NULL,
    digest TEXT NOT NULL,
    chain_seq INTEGER,
    CONSTRAINT gov_leaver_evidence_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT gov_leaver_evidence_plan UNIQUE (tenant_id, completed_plan_id)
);
CREATE INDEX gov_leaver_evidence_revoked ON gov_leaver_evidence (tenant_id, revoked_at_ms);

-- Leaver evidence is looked up by user in the change log and the HR intake's records.
CREATE INDEX inbound_operations_resource ON inbound_operations (resource_id);
