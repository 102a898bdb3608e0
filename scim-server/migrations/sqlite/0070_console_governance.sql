-- The console's governance pages (scim-server/src/console/governance.rs), kept in step with the
-- other dialect.

-- Who a signed-in person is as a reviewer: access reviews name reviewers by SCIM userName or
-- e-mail address, so the ID token's `email` and `preferred_username` are kept with the session
-- (NULL for a one-time admin link, which names no one).
ALTER TABLE console_sessions ADD COLUMN email TEXT;
ALTER TABLE console_sessions ADD COLUMN username TEXT;

-- A reviewer's inbox: the items of a tenant assigned to a name (or an e-mail address), compared
-- case-insensitively (ASCII, as LOWER folds on both databases), paged by (review, item).
CREATE INDEX gov_review_items_inbox ON gov_review_items (tenant_id, LOWER(reviewer), review_id, id);
CREATE INDEX gov_review_items_inbox_email ON gov_review_items (tenant_id, LOWER(reviewer_email), review_id, id);
