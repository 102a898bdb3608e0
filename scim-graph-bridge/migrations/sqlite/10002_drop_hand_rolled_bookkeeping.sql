-- Before the bridge's tables migrated with sqlx (in the `_sqlx_migrations` table they share
-- with the server's, versions 10001 and up), a hand-rolled migrator recorded them here.
-- 10001 creates nothing that exists already, so a database of that version keeps its data.
DROP TABLE IF EXISTS bridge_schema_migrations;
