-- Lookups by id, userName/displayName and externalId must find the exact index without planner
-- statistics: PostgreSQL may run with autovacuum off, and an initial sync starts before anything
-- has analysed the tables. Without statistics every equality gets the same default selectivity,
-- so an index led by (tenant_id, resource_type) looked as cheap as the exact one (both estimate one
-- row) and the planner could pick it and filter a tenant's whole resource type (a GET by id read
-- 10,000 rows through resources_external_id). Now no index but the list index has resource_type
-- in second place, and the list index is led by (tenant_id, id), so for a lookup every competitor
-- matches the tenant alone and is estimated far costlier than the exact index.

-- Lists (`WHERE tenant_id AND resource_type ORDER BY id COLLATE "C"`, byte order whatever the
-- database's locale) walk this in that order and test the type in the index, not the heap; the old
-- resources_type_id (tenant_id, resource_type, id) had the database's collation, so every page
-- sorted the tenant's whole type. Lookups by id use the primary key.
DROP INDEX resources_type_id;
CREATE INDEX resources_tenant_id_type ON resources (tenant_id, id COLLATE "C", resource_type);

ALTER TABLE resources DROP CONSTRAINT resources_unique_key;
ALTER TABLE resources ADD CONSTRAINT resources_unique_key UNIQUE (tenant_id, unique_key, resource_type);

DROP INDEX resources_external_id;
CREATE INDEX resources_external_id ON resources (tenant_id, external_id, resource_type);

-- No ANALYZE here: on a fresh database it would record an empty table as analysed, hiding from
-- `Store::refresh_statistics` (run by `serve`) that the table has never been analysed with rows.
