-- Durable audit: a rollout's events carry a key unique within its workflow id
-- (`<rollout id>:<sequence>` from the workflow's state), so a retried flush
-- activity writes each entry once. Older rows and backfill events have none.
ALTER TABLE stagefill.events ADD COLUMN audit_key text;
CREATE UNIQUE INDEX events_audit_key_idx ON stagefill.events (workflow_id, audit_key) WHERE audit_key IS NOT NULL;
