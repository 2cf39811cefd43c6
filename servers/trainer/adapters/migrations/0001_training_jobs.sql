-- The Trainer's tables. They share the mesh's database with the Registry's, so every name
-- starts with `trainer_` and the Trainer records its migrations in trainer_schema_migrations.

CREATE TABLE trainer_jobs (
    job_id             uuid        PRIMARY KEY,
    model_id           uuid        NOT NULL,
    dataset_id         text        NOT NULL DEFAULT '',
    state              text        NOT NULL CHECK (state IN ('QUEUED', 'PRE_TRAINING', 'TRAINING',
                                                             'POST_TRAINING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    failure_reason     text        NOT NULL DEFAULT '',
    executor           text        NOT NULL CHECK (executor IN ('local', 'argo')),
    time_limit_seconds bigint      NOT NULL CHECK (time_limit_seconds > 0),
    memory_limit_bytes bigint      NOT NULL CHECK (memory_limit_bytes > 0),
    framework          text        NOT NULL DEFAULT '',
    create_time        timestamptz NOT NULL,
    start_time         timestamptz,
    end_time           timestamptz,
    -- A FAILED/CANCELLED job whose failure the Registry has not acknowledged yet.
    report_pending     boolean     NOT NULL DEFAULT false
);

-- At most one live job per model: SubmitTrainingJob is idempotent per model.
CREATE UNIQUE INDEX trainer_jobs_live_model_idx ON trainer_jobs (model_id)
    WHERE state IN ('QUEUED', 'PRE_TRAINING', 'TRAINING', 'POST_TRAINING');
CREATE INDEX trainer_jobs_create_time_idx ON trainer_jobs (create_time DESC, job_id DESC);
CREATE INDEX trainer_jobs_model_create_time_idx ON trainer_jobs (model_id, create_time DESC, job_id DESC);
CREATE INDEX trainer_jobs_report_pending_idx ON trainer_jobs (job_id) WHERE report_pending;

CREATE TABLE trainer_job_logs (
    job_id   uuid        NOT NULL REFERENCES trainer_jobs (job_id) ON DELETE CASCADE,
    sequence bigint      NOT NULL CHECK (sequence > 0),
    time     timestamptz NOT NULL,
    stream   text        NOT NULL CHECK (stream IN ('stdout', 'stderr', 'trainer')),
    text     text        NOT NULL,
    PRIMARY KEY (job_id, sequence)
);
