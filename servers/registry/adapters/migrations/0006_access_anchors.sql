-- Grants on the ledger (docs/security.md, "Grants on the ledger?"): each audit event is appended
-- to the chain's AccessLog after its transaction commits, and the entry's transaction hash and
-- index are recorded on the audit row. '' / NULL: not anchored yet (the Registry retries).
ALTER TABLE access_events ADD COLUMN anchor_tx_hash text NOT NULL DEFAULT '',
                          ADD COLUMN anchor_index bigint CHECK (anchor_index >= 0);

CREATE INDEX access_events_unanchored_idx ON access_events (event_id) WHERE anchor_tx_hash = '';

-- Still append-only: the one UPDATE allowed sets the anchor of a row that has none, and changes
-- nothing else. Every other UPDATE, any DELETE and TRUNCATE are refused as before.
CREATE OR REPLACE FUNCTION access_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.anchor_tx_hash = '' AND NEW.anchor_tx_hash <> ''
       AND NEW.anchor_index IS NOT NULL
       AND (NEW.event_id, NEW.resource_kind, NEW.resource_id, NEW.action, NEW.grantee,
            NEW.actor_organization_id, NEW.actor_subject, NEW.event_time, NEW.changed)
           IS NOT DISTINCT FROM
           (OLD.event_id, OLD.resource_kind, OLD.resource_id, OLD.action, OLD.grantee,
            OLD.actor_organization_id, OLD.actor_subject, OLD.event_time, OLD.changed) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'access_events is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
