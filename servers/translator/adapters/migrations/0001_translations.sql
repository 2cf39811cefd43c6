-- ONNX translations of trained models (seed 7.4). A row exists only once the ONNX bytes are in
-- object storage and the Translation contract is on the ledger (servers/translator/domain/service.py).
-- Conventions follow the Registry's tables: uuid primary key, create_time + id as the keyset
-- List pages on (newest first), lowercase hex hashes checked here as well as in the domain.

CREATE TABLE translator_translations (
    translation_id   uuid             PRIMARY KEY,
    model_id         uuid             NOT NULL,
    framework        text             NOT NULL,
    source_sha256    text             NOT NULL CHECK (source_sha256 ~ '^[0-9a-f]{64}$'),
    converter        text             NOT NULL,
    opset            integer          NOT NULL CHECK (opset > 0),
    size_bytes       bigint           NOT NULL CHECK (size_bytes > 0),
    md5              text             NOT NULL CHECK (md5 ~ '^[0-9a-f]{32}$'),
    sha256           text             NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    max_abs_diff     double precision NOT NULL,
    max_rel_diff     double precision NOT NULL,
    atol             double precision NOT NULL,
    rtol             double precision NOT NULL,
    parity_passed    boolean          NOT NULL,
    batch_source     text             NOT NULL DEFAULT '',
    samples          bigint           NOT NULL DEFAULT 0,
    top1_agreement   double precision NOT NULL DEFAULT 0,
    source_accuracy  double precision NOT NULL DEFAULT -1,
    onnx_accuracy    double precision NOT NULL DEFAULT -1,
    report_json      text             NOT NULL,
    object_key       text             NOT NULL,
    contract_address text             NOT NULL,
    contract_tx_hash text             NOT NULL,
    create_time      timestamptz      NOT NULL,
    CONSTRAINT translator_translations_object_key_key UNIQUE (object_key)
);

CREATE INDEX translator_translations_list_idx
    ON translator_translations (create_time DESC, translation_id DESC);
CREATE INDEX translator_translations_model_idx
    ON translator_translations (model_id, create_time DESC, translation_id DESC);
