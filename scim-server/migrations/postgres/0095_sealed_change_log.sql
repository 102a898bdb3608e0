-- Issue 14: writers no longer serialise on tenant_chain. A write inserts its change record here,
-- unnumbered, in its own transaction (the outbox invariant: the write and its record commit
-- together), and commits. A sealer (one at a time across replicas, by advisory lock) then moves
-- the committed records into scim_changes in id order, giving each the tenant's next sequence
-- number and hash (see scim-server/src/store/seal.rs). Readers only ever see scim_changes.
CREATE TABLE scim_changes_pending (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    operation TEXT NOT NULL,
    change_json TEXT NOT NULL,
    principal TEXT NOT NULL,
    request_id TEXT,
    occurred_at TEXT NOT NULL
);

-- The pending row a sealed record came from (NULL for records sealed in their write's own
-- transaction), so a writer that needs its sequence number can find it.
ALTER TABLE scim_changes ADD COLUMN change_id BIGINT;
