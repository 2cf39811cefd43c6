-- Learners (issue 4; seed 2.1): the configuration, the latest saved version and what it had
-- learned. The live model is in the Learner's memory; this row is what a restart resumes from.

CREATE TABLE learner_learners (
    learner_id            uuid             PRIMARY KEY,
    display_name          text             NOT NULL UNIQUE,
    organization_id       text             NOT NULL,
    developer_id          text             NOT NULL,
    spec_json             text             NOT NULL,
    state                 text             NOT NULL CHECK (state IN ('READY', 'FAILED')),
    failure_reason        text             NOT NULL DEFAULT '',
    current_model_id      text             NOT NULL DEFAULT '',
    version               integer          NOT NULL DEFAULT 0 CHECK (version >= 0),
    observations_learned  bigint           NOT NULL DEFAULT 0 CHECK (observations_learned >= 0),
    saved_validation_loss double precision NULL,
    transformer_state     text             NOT NULL DEFAULT '{}',
    create_time           timestamptz      NOT NULL,
    save_time             timestamptz      NULL
);

CREATE INDEX learner_learners_create_time_idx ON learner_learners (create_time DESC, learner_id DESC);
CREATE INDEX learner_learners_org_idx ON learner_learners (organization_id, create_time DESC, learner_id DESC);
