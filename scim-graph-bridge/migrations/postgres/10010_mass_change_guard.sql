-- The mass-change guard (accidental-deletion prevention, `scim_graph_bridge::guard`). Times are
-- milliseconds since the Unix epoch.

-- One row per tenant the guard has seen: the row writers lock while deciding, so the count and
-- the decision are one step. Actions before counted_from_ms are not counted (an operator's
-- decision starts a new count); tripped_at_ms is set while the tenant's leaver plans are held.
CREATE TABLE bridge_guard_tenants (
  tenant_id       TEXT    NOT NULL PRIMARY KEY,
  counted_from_ms BIGINT  NOT NULL,
  tripped_at_ms   BIGINT
);

-- Leaver actions (a disable or a delete in Graph) let through, for the sliding window.
CREATE TABLE bridge_guard_actions (
  tenant_id TEXT   NOT NULL,
  user_id   TEXT   NOT NULL,
  at_ms     BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, user_id, at_ms)
);
CREATE INDEX bridge_guard_actions_window ON bridge_guard_actions (tenant_id, at_ms);

-- Leaver plans held for an operator: held -> approved -> applied, or held -> rejected; a plan
-- that stops being a leaver plan before it is applied is superseded. At most one open
-- (held or approved) hold per user.
CREATE TABLE bridge_holds (
  id            TEXT   NOT NULL PRIMARY KEY,
  tenant_id     TEXT   NOT NULL,
  user_id       TEXT   NOT NULL,
  status        TEXT   NOT NULL,
  reason        TEXT   NOT NULL,
  plan_json     TEXT   NOT NULL,
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL,
  decided_at_ms BIGINT,
  decided_by    TEXT
);
CREATE UNIQUE INDEX bridge_holds_open ON bridge_holds (tenant_id, user_id) WHERE status IN ('held', 'approved');
CREATE INDEX bridge_holds_by_tenant ON bridge_holds (tenant_id, status, created_at_ms);
