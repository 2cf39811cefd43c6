-- The Federation server's tables. They share the mesh's database with the other servers', so
-- every name starts with `federation_` and migrations are recorded in federation_schema_migrations.

CREATE TABLE federation_jobs (
    job_id             uuid        PRIMARY KEY,
    organization_id    text        NOT NULL CHECK (organization_id <> ''),
    framework          text        NOT NULL CHECK (framework IN ('fedpate', 'tff', 'flare')),
    request            jsonb       NOT NULL,  -- the checked spec and data (domain/jobs.py request_to_json)
    state              text        NOT NULL CHECK (state IN ('QUEUED', 'PREPARING', 'RUNNING', 'REGISTERING',
                                                             'SUCCEEDED', 'FAILED', 'CANCELLED')),
    failure_reason     text        NOT NULL DEFAULT '',
    framework_version  text        NOT NULL DEFAULT '',
    executor           text        NOT NULL CHECK (executor IN ('local', 'argo')),
    time_limit_seconds bigint      NOT NULL CHECK (time_limit_seconds > 0),
    memory_limit_bytes bigint      NOT NULL CHECK (memory_limit_bytes > 0),
    rounds             jsonb       NOT NULL DEFAULT '[]',
    privacy            jsonb,
    client_commitments jsonb       NOT NULL DEFAULT '[]',
    result_model_id    text        NOT NULL DEFAULT '',
    create_time        timestamptz NOT NULL,
    start_time         timestamptz,
    end_time           timestamptz
);

CREATE INDEX federation_jobs_org_create_time_idx ON federation_jobs (organization_id, create_time DESC, job_id DESC);
CREATE INDEX federation_jobs_org_framework_create_time_idx
    ON federation_jobs (organization_id, framework, create_time DESC, job_id DESC);
CREATE INDEX federation_jobs_live_idx ON federation_jobs (create_time)
    WHERE state IN ('QUEUED', 'PREPARING', 'RUNNING', 'REGISTERING');

CREATE TABLE federation_job_logs (
    job_id   uuid        NOT NULL REFERENCES federation_jobs (job_id) ON DELETE CASCADE,
    sequence bigint      NOT NULL CHECK (sequence > 0),
    time     timestamptz NOT NULL,
    stream   text        NOT NULL CHECK (stream IN ('stdout', 'stderr', 'federation')),
    text     text        NOT NULL,
    PRIMARY KEY (job_id, sequence)
);
