-- The `jti` of every RFC 7523 assertion accepted by /oauth/token, kept until the assertion
-- expires, so a replayed assertion is refused (RFC 7523 §3, item 7).
CREATE TABLE assertion_jtis (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_unix BIGINT NOT NULL,
    CONSTRAINT assertion_jtis_pkey PRIMARY KEY (issuer, jti)
);
CREATE INDEX assertion_jtis_expires ON assertion_jtis (expires_unix);
