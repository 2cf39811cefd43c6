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

-- One version number per lineage position: two savers cannot both create version N of a parent.
CREATE UNIQUE INDEX models_parent_version_idx ON models (parent_model_id, version) WHERE parent_model_id IS NOT NULL;
CREATE INDEX models_learner_idx ON models (learner_id, version DESC) WHERE learner_id <> '';
