-- NVIDIA FLARE servers for real clients (the seed's /nvoverser): a provisioned project whose
-- server process the Federation server runs; kits and certificates stay in its work dir.

CREATE TABLE federation_flare_servers (
    flare_server_id uuid        PRIMARY KEY,
    organization_id text        NOT NULL CHECK (organization_id <> ''),
    project_name    text        NOT NULL,
    client_names    jsonb       NOT NULL,
    state           text        NOT NULL CHECK (state IN ('STARTING', 'RUNNING', 'STOPPED', 'FAILED')),
    failure_reason  text        NOT NULL DEFAULT '',
    address         text        NOT NULL DEFAULT '',
    create_time     timestamptz NOT NULL,
    stop_time       timestamptz
);

CREATE INDEX federation_flare_servers_org_create_time_idx
    ON federation_flare_servers (organization_id, create_time DESC, flare_server_id DESC);
