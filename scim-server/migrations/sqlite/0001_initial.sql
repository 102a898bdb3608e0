-- Initial schema (SQLite). Kept in step with migrations/postgres/0001_initial.sql: same tables,
-- columns and constraint names; only types differ.

CREATE TABLE tenants (
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    bulk_upsert_by_external_id BOOLEAN NOT NULL DEFAULT FALSE,
    created TEXT NOT NULL,
    CONSTRAINT tenants_pkey PRIMARY KEY (id)
);

CREATE TABLE tokens (
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    label TEXT NOT NULL,
    read_only BOOLEAN NOT NULL DEFAULT FALSE,
    created TEXT NOT NULL,
    expires TEXT,
    revoked TEXT,
    CONSTRAINT tokens_pkey PRIMARY KEY (id),
    CONSTRAINT tokens_secret_hash_key UNIQUE (secret_hash)
);
CREATE INDEX tokens_tenant ON tokens (tenant_id);

-- One row per resource. `attributes` holds the wire-form attributes (without id, meta, a Group's
-- members or a User's groups). The other columns are derived from them on every write so that
-- the filters provisioning clients send are index lookups.
CREATE TABLE resources (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    last_modified_ns INTEGER NOT NULL,
    -- lower-cased userName (User) or displayName (Group); NULL for other types
    unique_key TEXT,
    external_id TEXT,
    -- enterprise extension manager.value
    manager_id TEXT,
    -- what a member or group reference displays (displayName, else userName)
    display TEXT,
    attributes TEXT NOT NULL,
    -- SQLite only: `attributes` with every string case-folded by the server (SQLite's lower()
    -- folds ASCII only), read by case-insensitive filters and sorts
    attributes_ci TEXT NOT NULL,
    CONSTRAINT resources_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT resources_unique_key UNIQUE (tenant_id, resource_type, unique_key)
);
CREATE INDEX resources_type_id ON resources (tenant_id, resource_type, id);
CREATE INDEX resources_external_id ON resources (tenant_id, resource_type, external_id);
CREATE INDEX resources_manager_id ON resources (tenant_id, manager_id);

-- Values of multi-valued string attributes (emails, phoneNumbers, ...), lower-cased, so that
-- `emails[type eq "work"].value eq "x"` is an index lookup.
CREATE TABLE resource_values (
    tenant_id TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    attr TEXT NOT NULL,
    type_ci TEXT,
    value_ci TEXT NOT NULL,
    CONSTRAINT resource_values_resource_fkey FOREIGN KEY (tenant_id, resource_id)
        REFERENCES resources (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX resource_values_lookup ON resource_values (tenant_id, attr, value_ci);
CREATE INDEX resource_values_resource ON resource_values (tenant_id, resource_id);

-- Group membership, one row per (group, member).
CREATE TABLE memberships (
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_type TEXT NOT NULL,
    CONSTRAINT memberships_pkey PRIMARY KEY (tenant_id, group_id, member_id),
    CONSTRAINT memberships_group_fkey FOREIGN KEY (tenant_id, group_id)
        REFERENCES resources (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT memberships_member_fkey FOREIGN KEY (tenant_id, member_id)
        REFERENCES resources (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX memberships_member ON memberships (tenant_id, member_id, group_id);

-- The outbox: one record per write, hash-chained per tenant. Read directly by the Graph bridge.
CREATE TABLE scim_changes (
    tenant_id TEXT NOT NULL,
    tenant_seq INTEGER NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    operation TEXT NOT NULL,
    change_json TEXT NOT NULL,
    principal TEXT NOT NULL,
    request_id TEXT,
    occurred_at TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, tenant_seq)
);

-- The head of each tenant's chain; writers serialise on it.
CREATE TABLE tenant_chain (
    tenant_id TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    CONSTRAINT tenant_chain_pkey PRIMARY KEY (tenant_id)
);
