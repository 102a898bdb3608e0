-- Issue 14: PostgreSQL's 0097 reorders the console's by-name index so that a lookup by id
-- cannot pick it without statistics. SQLite's planner picks indexes by their equality terms
-- without statistics, so nothing changes here; this keeps the two numbered alike.
SELECT 1;
