-- The console's people and groups lists page by key (keyset paging), newest changes first or
-- by name: each order needs an index that yields it, so no page sorts a whole tenant.
-- By name: `resources_unique_key` (tenant_id, resource_type, unique_key) already does.
-- By last modification, ties broken by id:
CREATE INDEX resources_last_modified ON resources (tenant_id, resource_type, last_modified_ns, id);
