-- Issue 14 (sqlite; kept in step with the other dialect). SQLite serialises writers itself, so
-- its writes keep sealing their change record (sequence number and hash) in their own
-- transaction and never use scim_changes_pending; the table exists so that statements reading
-- it run on both databases. On PostgreSQL, writers insert here and a sealer numbers the records
-- after commit (see scim-server/src/store/seal.rs).
CREATE TABLE scim_changes_pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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

ALTER TABLE scim_changes ADD COLUMN change_id BIGINT;
