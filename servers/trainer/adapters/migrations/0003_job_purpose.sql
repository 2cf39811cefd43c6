-- Reproductions (issue 14): a job is either a TRAINING (its result goes to the Registry) or a
-- REPRODUCTION of a trained model for the organization that asked, with the comparison's outcome.
-- A model has at most one live training, and at most one live reproduction per organization.

ALTER TABLE trainer_jobs ADD COLUMN purpose text NOT NULL DEFAULT 'TRAINING'
    CHECK (purpose IN ('TRAINING', 'REPRODUCTION'));
ALTER TABLE trainer_jobs ADD COLUMN reproduction jsonb;

DROP INDEX trainer_jobs_live_model_idx;
CREATE UNIQUE INDEX trainer_jobs_live_model_idx ON trainer_jobs (model_id)
    WHERE state IN ('QUEUED', 'PRE_TRAINING', 'TRAINING', 'POST_TRAINING') AND purpose = 'TRAINING';
CREATE UNIQUE INDEX trainer_jobs_live_reproduction_idx ON trainer_jobs (model_id, organization_id)
    WHERE state IN ('QUEUED', 'PRE_TRAINING', 'TRAINING', 'POST_TRAINING') AND purpose = 'REPRODUCTION';
