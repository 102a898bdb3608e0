-- Leaver evidence reads the applied leaver plans of a period (BridgeStore::leaver_plans).
CREATE INDEX IF NOT EXISTS bridge_plans_kind ON bridge_plans (kind, created_at_ms);
