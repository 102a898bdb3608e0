-- HR intake queue (sqlite; kept in step with the other dialect: same tables, columns and constraint
-- names). Written only by scim_server::inbound; resources are written through the service.

-- One row per accepted intake job (a bulkUpload request). The row is its own lease: a worker
-- claims it by setting lease_owner and lease_until_ns; an expired lease may be taken again.
CREATE TABLE inbound_jobs (
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    -- who submitted it (recorded as the principal of every write the job makes)
    principal TEXT NOT NULL,
    request_id TEXT,
    source TEXT NOT NULL,
    -- queued | running | completed | completedWithErrors | dead
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_after_ns INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until_ns INTEGER,
    last_error TEXT,
    created_ns INTEGER NOT NULL,
    finished_ns INTEGER,
    CONSTRAINT inbound_jobs_pkey PRIMARY KEY (id)
);
CREATE INDEX inbound_jobs_due ON inbound_jobs (status, run_after_ns);
CREATE INDEX inbound_jobs_tenant ON inbound_jobs (tenant_id, created_ns);

-- The operations of a job, in request order. data is cleared once the operation is final
-- (personal data is kept no longer than the work needs it).
CREATE TABLE inbound_operations (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    bulk_id TEXT,
    external_id TEXT,
    data TEXT,
    -- NULL while pending; created | updated | unchanged | failed
    outcome TEXT,
    resource_id TEXT,
    -- the SCIM error body of a failed operation (JSON)
    error TEXT,
    CONSTRAINT inbound_operations_pkey PRIMARY KEY (job_id, seq),
    CONSTRAINT inbound_operations_job_fkey FOREIGN KEY (job_id) REFERENCES inbound_jobs (id) ON DELETE CASCADE
);

-- A report whose manager (named by the manager's externalId) did not exist yet: resolved when a
-- user with that externalId is written.
CREATE TABLE inbound_manager_links (
    tenant_id TEXT NOT NULL,
    employee_external_id TEXT NOT NULL,
    manager_external_id TEXT NOT NULL,
    CONSTRAINT inbound_manager_links_pkey PRIMARY KEY (tenant_id, employee_external_id)
);
CREATE INDEX inbound_manager_links_manager ON inbound_manager_links (tenant_id, manager_external_id);
