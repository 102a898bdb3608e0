-- The bridge's durable state. Times are milliseconds since the Unix epoch. Every statement is
-- IF NOT EXISTS: databases created by the hand-rolled migrator of earlier versions already have
-- these tables, and this migration must leave them (and their rows) as they are.

-- How far each tenant's scim_changes have been turned into work.
CREATE TABLE IF NOT EXISTS bridge_cursor (
  tenant_id     TEXT    NOT NULL PRIMARY KEY,
  last_seq      BIGINT  NOT NULL
);

-- One row per user with pending work (changes coalesce into it); the lease
-- columns make it the lease row: a worker owns the user until lease_until_ms.
CREATE TABLE IF NOT EXISTS bridge_work (
  tenant_id      TEXT    NOT NULL,
  user_id        TEXT    NOT NULL,
  generation     BIGINT  NOT NULL,
  due_at_ms      BIGINT  NOT NULL,
  attempts       BIGINT  NOT NULL DEFAULT 0,
  lease_owner    TEXT,
  lease_until_ms BIGINT,
  last_error     TEXT,
  enqueued_at_ms BIGINT  NOT NULL,
  PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX IF NOT EXISTS bridge_work_due ON bridge_work (due_at_ms);

-- What the bridge remembers per user: the Graph object and when it left.
CREATE TABLE IF NOT EXISTS bridge_links (
  tenant_id     TEXT    NOT NULL,
  user_id       TEXT    NOT NULL,
  graph_id      TEXT,
  left_at_ms    BIGINT,
  updated_at_ms BIGINT  NOT NULL,
  PRIMARY KEY (tenant_id, user_id)
);

-- Work that failed max_attempts times, or hit a permanent Graph error.
CREATE TABLE IF NOT EXISTS bridge_dead_letters (
  id            TEXT    NOT NULL PRIMARY KEY,
  tenant_id     TEXT    NOT NULL,
  user_id       TEXT    NOT NULL,
  attempts      BIGINT  NOT NULL,
  reason        TEXT    NOT NULL,
  created_at_ms BIGINT  NOT NULL
);

-- Every computed plan and, when applied, the outcome of each step.
CREATE TABLE IF NOT EXISTS bridge_plans (
  id            TEXT    NOT NULL PRIMARY KEY,
  tenant_id     TEXT    NOT NULL,
  user_id       TEXT    NOT NULL,
  created_at_ms BIGINT  NOT NULL,
  mode          TEXT    NOT NULL,
  kind          TEXT    NOT NULL,
  status        TEXT    NOT NULL,
  plan_json     TEXT    NOT NULL,
  report_json   TEXT
);
CREATE INDEX IF NOT EXISTS bridge_plans_user ON bridge_plans (tenant_id, user_id, created_at_ms);
