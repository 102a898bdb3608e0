-- Issue 14: PostgreSQL's 0096 adds a function for its one-statement writes. SQLite checks a
-- deferred compare-and-swap with a guard statement on the writer connection instead
-- (scim-server/src/store/sqlite.rs, CAS_GUARD); this keeps the two numbered alike.
SELECT 1;
