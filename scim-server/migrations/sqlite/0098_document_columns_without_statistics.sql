-- Issue 14: PostgreSQL's 0098 leaves the stored documents out of its planner statistics. The
-- server gathers none on SQLite (its planner picks lookups by their equality terms), so nothing
-- changes here; this keeps the two numbered alike.
SELECT 1;
