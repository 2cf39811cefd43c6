-- Model versions learned online by the Learner (issue 4): a version links to its predecessor,
-- and its "recipe" is the learning record (learner spec, predecessor, digest of the
-- observations learned), stored like a recipe archive and anchored the same way.

ALTER TABLE models DROP CONSTRAINT models_source_kind_check;
ALTER TABLE models ADD CONSTRAINT models_source_kind_check CHECK (source_kind IN ('recipe', 'image', 'online'));

ALTER TABLE models
    ADD COLUMN parent_model_id     uuid             NULL REFERENCES models (model_id),
    ADD COLUMN version             integer          NOT NULL DEFAULT 0 CHECK (version >= 0),
    ADD COLUMN learner_id          text             NOT NULL DEFAULT '',
    ADD COLUMN observations        bigint           NOT NULL DEFAULT 0 CHECK (observations >= 0),
    ADD COLUMN observations_sha256 text             NOT NULL DEFAULT ''
        CHECK (observations_sha256 ~ '^([0-9a-f]{64})?$'),
    ADD COLUMN validation_loss     double precision NOT NULL DEFAULT 0;

-- Versions form a tree: a Learner that crashed after the Registry stored a version but before it
-- recorded it resumes from the parent and saves another child with the same number (the first
-- stays, anchored, as a dead branch). So (parent, version) is indexed, not unique.
CREATE INDEX models_parent_idx ON models (parent_model_id, version) WHERE parent_model_id IS NOT NULL;
CREATE INDEX models_learner_idx ON models (learner_id, version DESC) WHERE learner_id <> '';
