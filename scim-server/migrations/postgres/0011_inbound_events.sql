-- HR events (postgres; kept in step with the other dialect). An event becomes one or more jobs, some
-- scheduled at its effective time (run_after_ns); a later event for the same employee supersedes
-- the pending jobs of the same lane.

-- The employee (externalId) a scheduled job is about, and its lane: 'lifecycle' (activation,
-- deactivation) or 'update' (attribute changes). NULL for bulkUpload jobs.
ALTER TABLE inbound_jobs ADD COLUMN subject TEXT;
ALTER TABLE inbound_jobs ADD COLUMN lane TEXT;
CREATE INDEX inbound_jobs_subject ON inbound_jobs (tenant_id, subject, lane, status);

-- Events received, by their id: a replay is recognised and changes nothing.
CREATE TABLE inbound_events (
    tenant_id TEXT NOT NULL,
    source TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    received_ns BIGINT NOT NULL,
    CONSTRAINT inbound_events_pkey PRIMARY KEY (tenant_id, source, event_id)
);
