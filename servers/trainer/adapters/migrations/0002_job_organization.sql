-- A training job belongs to its model's owner organization (docs/security.md): only that
-- organization (and the mesh's own servers) may get, watch, cancel or list it, and pre-train
-- fetches the dataset and the recipe on its behalf. Jobs recorded before this migration get ''
-- here; the Trainer fills them in from the Registry when it starts (TrainerCore.start).

ALTER TABLE trainer_jobs ADD COLUMN organization_id text NOT NULL DEFAULT '';

CREATE INDEX trainer_jobs_org_create_time_idx ON trainer_jobs (organization_id, create_time DESC, job_id DESC);
CREATE INDEX trainer_jobs_org_model_create_time_idx
    ON trainer_jobs (organization_id, model_id, create_time DESC, job_id DESC);
