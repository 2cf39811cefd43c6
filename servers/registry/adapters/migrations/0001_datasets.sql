-- Datasets registered in the Registry: the metadata the object store does not keep
-- (seed 7.1.2: filename and content type live in the relational database) plus the
-- hashes and the ledger contract that anchor the bytes.
--
-- Conventions every Registry table follows (a `models` table will sit beside this one,
-- with `dataset_id uuid REFERENCES datasets (dataset_id)`):
--   * the primary key is a uuid named <resource>_id;
--   * create_time is timestamptz (UTC) and, with the id as tie-breaker, the keyset
--     that List pages on, newest first;
--   * an (organization_id, create_time DESC, <resource>_id DESC) index serves the
--     per-organization listing;
--   * hashes are lowercase hex, checked here as well as in the domain.

CREATE TABLE datasets (
    dataset_id        uuid        PRIMARY KEY,
    display_name      text        NOT NULL,
    organization_id   text        NOT NULL,
    samples_dimension text        NOT NULL DEFAULT '',
    content_type      text        NOT NULL,
    filename          text        NOT NULL DEFAULT '',
    size_bytes        bigint      NOT NULL CHECK (size_bytes >= 0),
    md5               text        NOT NULL CHECK (md5 ~ '^[0-9a-f]{32}$'),
    sha256            text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    object_key        text        NOT NULL,
    contract_address  text        NOT NULL,
    contract_tx_hash  text        NOT NULL,
    create_time       timestamptz NOT NULL,
    CONSTRAINT datasets_object_key_key UNIQUE (object_key)
);

CREATE INDEX datasets_create_time_idx ON datasets (create_time DESC, dataset_id DESC);
CREATE INDEX datasets_organization_create_time_idx
    ON datasets (organization_id, create_time DESC, dataset_id DESC);
