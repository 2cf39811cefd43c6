-- Sharing (issue 9, docs/security.md): who besides its owner may read a dataset or a model,
-- and the audit log of every share and unshare.
--
-- grants: one row per (resource, grantee); grantee '*' is the public grant. A resource is
-- either a dataset or a model, so there is no foreign key: the Registry never deletes one
-- without its grants (it deletes only a model whose registration it takes back, before any
-- share could name it).

CREATE TABLE grants (
    resource_kind text        NOT NULL CHECK (resource_kind IN ('dataset', 'model')),
    resource_id   uuid        NOT NULL,
    grantee       text        NOT NULL CHECK (grantee <> '' AND length(grantee) <= 128),
    granted_by    text        NOT NULL,
    grant_time    timestamptz NOT NULL,
    PRIMARY KEY (resource_kind, resource_id, grantee)
);

-- "What is shared with me": the lists' visibility test looks grants up by grantee.
CREATE INDEX grants_grantee_idx ON grants (grantee, resource_kind, resource_id);

-- Every accepted share or unshare request, also those that changed nothing (`changed`):
-- who (the owner organization and the token's subject), when, what (action, grantee).
CREATE TABLE access_events (
    event_id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resource_kind         text        NOT NULL CHECK (resource_kind IN ('dataset', 'model')),
    resource_id           uuid        NOT NULL,
    action                text        NOT NULL CHECK (action IN ('SHARE', 'UNSHARE')),
    grantee               text        NOT NULL CHECK (grantee <> '' AND length(grantee) <= 128),
    actor_organization_id text        NOT NULL,
    actor_subject         text        NOT NULL,
    event_time            timestamptz NOT NULL,
    changed               boolean     NOT NULL
);

CREATE INDEX access_events_resource_idx ON access_events (resource_kind, resource_id, event_id);

-- Append-only in the database itself, not only in the Registry's code: an UPDATE, DELETE or
-- TRUNCATE of the audit log fails whoever runs it (short of dropping the trigger, which needs
-- the table's owner and is itself visible in the schema).
CREATE FUNCTION access_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_events is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER access_events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON access_events
    FOR EACH ROW EXECUTE FUNCTION access_events_refuse_change();

CREATE TRIGGER access_events_no_truncate
    BEFORE TRUNCATE ON access_events
    FOR EACH STATEMENT EXECUTE FUNCTION access_events_refuse_change();
