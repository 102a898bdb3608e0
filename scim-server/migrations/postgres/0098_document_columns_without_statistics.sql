-- Issue 14: the server analyses its large tables itself while they grow (autovacuum may be off;
-- store/postgres.rs, analyze_stale_tables). Column statistics on the stored documents and
-- hashes serve no plan (no lookup compares them) and were most of an ANALYZE's cost: at 17,000
-- users, 443 ms for `resources` against 15 ms without them (with the server's 3,000-row
-- sample). A target of 0 leaves them out of every ANALYZE, autovacuum's included; the row
-- counts and the other columns' statistics are kept as before.
ALTER TABLE resources ALTER COLUMN attributes SET STATISTICS 0;
ALTER TABLE scim_changes
    ALTER COLUMN change_json SET STATISTICS 0,
    ALTER COLUMN prev_hash SET STATISTICS 0,
    ALTER COLUMN hash SET STATISTICS 0;
ALTER TABLE scim_changes_pending ALTER COLUMN change_json SET STATISTICS 0;
