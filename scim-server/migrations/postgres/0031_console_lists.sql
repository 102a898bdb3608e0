-- The console's people and groups lists page by key (keyset paging), by name or by last
-- modification: each order needs an index that yields it, so no page sorts a whole tenant.
-- By name, in code-point order whatever the database's collation (a prefix search is then a
-- range of this index):
CREATE INDEX resources_unique_key_c ON resources (tenant_id, resource_type, (unique_key COLLATE "C"));
-- By last modification, ties broken by id. Keyed on an expression that only the console's
-- statement names (`console::db::keyset_sql`), so that it cannot compete with the indexes the
-- store's filters need.
CREATE INDEX resources_last_modified ON resources ((tenant_id || '/' || resource_type), last_modified_ns, id);
