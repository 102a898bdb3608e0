-- Issue 14: 0050 left one index with resource_type right after tenant_id: the console's by-name
-- index from 0031. Without statistics (autovacuum off, or an initial sync before the server's
-- statistics refresh) a prepared GET by id switched to a generic plan that used it, matching
-- (tenant_id, resource_type) and filtering a tenant's whole type by id (EXPLAIN: "Rows Removed
-- by Filter: 999" at 1,000 users). Led by (tenant_id, name) instead, it matches only the tenant
-- for a lookup by id, which makes the primary key the planner's choice with or without
-- statistics; the console's lists still walk it in name order within the tenant and test the
-- type in the index.
DROP INDEX resources_unique_key_c;
CREATE INDEX resources_unique_key_c ON resources (tenant_id, (unique_key COLLATE "C"), resource_type);
