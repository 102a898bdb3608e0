-- Issue 14: a resource write is sent as one statement (its statements as data-modifying WITH
-- queries), which commits on its own. An update's compare-and-swap cannot stop the statements
-- after it from running, so the statement's main query passes the number of rows it changed
-- to this function, which fails the whole statement when that number is 0: nothing of the
-- write is stored, and the server reads the stored version to answer 412 or 404
-- (scim-server/src/store/postgres.rs, one_statement_write).
CREATE FUNCTION scim_expect_rows(changed BIGINT) RETURNS BIGINT
LANGUAGE plpgsql AS $$
BEGIN
    IF changed = 0 THEN
        RAISE EXCEPTION 'compare-and-swap matched no row' USING ERRCODE = 'SCAS0';
    END IF;
    RETURN changed;
END
$$;
