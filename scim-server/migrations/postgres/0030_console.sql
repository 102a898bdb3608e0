-- The operator console (scim-server/src/console): sessions, sign-ins in flight, one-time admin
-- sign-in links and the log of console actions. Times are Unix seconds.

-- A signed-in browser. The cookie carries a random secret; only its SHA-256 is stored.
CREATE TABLE console_sessions (
    id_hash TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- An OpenID Connect sign-in between the redirect to the provider and its callback, by the
-- SHA-256 of its `state`.
CREATE TABLE console_logins (
    state_hash TEXT NOT NULL PRIMARY KEY,
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One-time admin sign-in links printed by `serve` when no provider is configured.
CREATE TABLE console_links (
    secret_hash TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

-- Every console action, allowed or refused, with the person who took it.
CREATE TABLE console_actions (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    subject TEXT NOT NULL,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    request_id TEXT
);
CREATE INDEX console_actions_tenant ON console_actions (tenant_id, id);

-- A person's timeline reads their change records by resource id, newest first.
CREATE INDEX scim_changes_resource ON scim_changes (tenant_id, resource_id, tenant_seq);
