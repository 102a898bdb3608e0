-- Numbered alike with postgres/0050, which reorders PostgreSQL's lookup indexes so its planner
-- finds them without statistics. SQLite's planner already prefers the index matching the most
-- equality terms when it has no statistics, so its indexes stay as they are.
SELECT 1;
