// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title mlmesh Dataset contract (D3.4 section 7.2.1, Tables 11 and 12, plus SHA-256).
/// @notice Anchors one registered dataset's identity and content hashes on the chain.
///         Every field is set once by the constructor and never changes.
contract Dataset {
    /// @notice Marks the contract as an mlmesh Dataset, so a reader can tell it from any other contract.
    string public constant KIND = "mlmesh.Dataset/1";

    /// @notice Account that deployed the contract (the Ledger's signer).
    address public immutable owner;

    /// @notice Block in which the contract was deployed.
    uint256 public immutable deployed_block;

    string private dataset_id;
    string private organization_id;
    string private samples_dimension;
    int256 private size_bytes;
    /// @dev MD5 of the dataset bytes, lowercase hex; the seed calls it `hash`.
    string private hash;
    /// @dev SHA-256 of the dataset bytes, lowercase hex (named `sha256_hash`: `sha256` is a Solidity builtin).
    string private sha256_hash;

    constructor(
        string memory _dataset_id,
        string memory _organization_id,
        string memory _samples_dimension,
        int256 _size_bytes,
        string memory _hash,
        string memory _sha256
    ) {
        require(bytes(_dataset_id).length > 0, "dataset_id is empty");
        require(_size_bytes >= 0, "size_bytes is negative");
        owner = msg.sender;
        deployed_block = block.number;
        dataset_id = _dataset_id;
        organization_id = _organization_id;
        samples_dimension = _samples_dimension;
        size_bytes = _size_bytes;
        hash = _hash;
        sha256_hash = _sha256;
    }

    /// @notice Every field of the dataset (the seed's Table 12 names this operation).
    function get_dataset_params()
        external
        view
        returns (
            string memory,
            string memory,
            string memory,
            int256,
            string memory,
            string memory
        )
    {
        return (dataset_id, organization_id, samples_dimension, size_bytes, hash, sha256_hash);
    }
}
