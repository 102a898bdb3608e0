-- Finds the change record a request wrote, by the request id it carried: a create retried after
-- an unknown commit outcome (a 503 for a lost connection) is recognised by its X-Request-Id and
-- answered with the resource the first attempt stored, instead of 409.
CREATE INDEX scim_changes_request ON scim_changes (tenant_id, request_id);
