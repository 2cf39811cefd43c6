-- The seed's GET /contract/{address} (seed 7.2.2) finds the dataset or model a contract belongs to,
-- so that only those who may read the asset may read its contract. Addresses are compared without
-- regard to case (EIP-55 checksums mix cases; a client may send either).
CREATE INDEX datasets_contract_address_idx ON datasets (lower(contract_address));
CREATE INDEX models_contract_address_idx ON models (lower(contract_address));
