-- Models registered in the Registry (seed 7.1.3, Table 13): what trains them (a recipe
-- archive stored beside the datasets, or a container image pinned by digest), where they are
-- in their lifecycle, and, once trained, the result's hashes as the ledger's write-once
-- verify recorded them.

CREATE TABLE models (
    model_id            uuid        PRIMARY KEY,
    display_name        text        NOT NULL,
    organization_id     text        NOT NULL,
    developer_id        text        NOT NULL,
    dataset_id          uuid        NOT NULL REFERENCES datasets (dataset_id),
    source_kind         text        NOT NULL CHECK (source_kind IN ('recipe', 'image')),
    recipe_filename     text        NOT NULL DEFAULT '',
    recipe_size_bytes   bigint      NOT NULL DEFAULT 0 CHECK (recipe_size_bytes >= 0),
    recipe_md5          text        NOT NULL DEFAULT '' CHECK (recipe_md5 ~ '^([0-9a-f]{32})?$'),
    recipe_sha256       text        NOT NULL DEFAULT '' CHECK (recipe_sha256 ~ '^([0-9a-f]{64})?$'),
    recipe_object_key   text        NOT NULL DEFAULT '',
    image_reference     text        NOT NULL DEFAULT '',
    image_digest        text        NOT NULL DEFAULT '',
    time_limit_seconds  bigint      NOT NULL DEFAULT 0,
    memory_limit_bytes  bigint      NOT NULL DEFAULT 0,
    state               text        NOT NULL CHECK (state IN ('PENDING', 'TRAINING', 'TRAINED', 'FAILED')),
    failure_reason      text        NOT NULL DEFAULT '',
    training_job_id     text        NOT NULL DEFAULT '',
    framework           text        NOT NULL DEFAULT '',
    input_signature     text        NOT NULL DEFAULT '',
    size_bytes          bigint      NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
    res_md5             text        NOT NULL DEFAULT '' CHECK (res_md5 ~ '^([0-9a-f]{32})?$'),
    res_sha256          text        NOT NULL DEFAULT '' CHECK (res_sha256 ~ '^([0-9a-f]{64})?$'),
    object_key          text        NOT NULL DEFAULT '',
    contract_address    text        NOT NULL,
    contract_tx_hash    text        NOT NULL,
    verify_tx_hash      text        NOT NULL DEFAULT '',
    create_time         timestamptz NOT NULL,
    update_time         timestamptz NOT NULL,
    -- A model is TRAINED only with a result whose hashes were verified on the ledger.
    CONSTRAINT models_trained_has_result CHECK (
        state <> 'TRAINED' OR (res_sha256 <> '' AND res_md5 <> '' AND object_key <> '' AND verify_tx_hash <> '')
    )
);

CREATE INDEX models_create_time_idx ON models (create_time DESC, model_id DESC);
CREATE INDEX models_organization_create_time_idx ON models (organization_id, create_time DESC, model_id DESC);
CREATE INDEX models_dataset_create_time_idx ON models (dataset_id, create_time DESC, model_id DESC);
