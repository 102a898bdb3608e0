-- HR intake retention (sqlite; kept in step with the other dialect): the upkeep task deletes
-- finished jobs and event ids older than `inbound.job_retention_days`; these indexes find them
-- without reading the whole tables.
CREATE INDEX inbound_jobs_finished ON inbound_jobs (status, finished_ns);
CREATE INDEX inbound_events_received ON inbound_events (received_ns);
