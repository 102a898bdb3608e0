-- The console's people and groups lists page by key (keyset paging), by name or by last
-- modification: each order needs an index that yields it, so no page sorts a whole tenant.
-- By name: `resources_unique_key` (tenant_id, resource_type, unique_key) already does.
-- By last modification, ties broken by id. Keyed on an expression that only the console's
-- statement names (`console::db::keyset_sql`): an index led by (tenant_id, resource_type) would
-- also match every query of the store, and without statistics SQLite then took it over the
-- index a filter needs (`store::matching_filters_use_indexes`).
CREATE INDEX resources_last_modified ON resources ((tenant_id || '/' || resource_type), last_modified_ns, id);
