// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title mlmesh Model contract (D3.4 section 7.2.1, Tables 13 and 14, plus SHA-256).
/// @notice Anchors one registered model: who made it, from which dataset and training recipe,
///         and - once training is done - the hashes of the result. The result is write-once.
contract Model {
    /// @notice Marks the contract as an mlmesh Model, so a reader can tell it from any other contract.
    string public constant KIND = "mlmesh.Model/1";

    /// @notice Account that deployed the contract; the only account allowed to verify it.
    address public immutable owner;

    /// @notice Block in which the contract was deployed.
    uint256 public immutable deployed_block;

    string private model_id;
    string private organization_id;
    string private developer_id;
    string private dataset_id;
    /// @dev MD5 of the training recipe archive or container image digest.
    string private train_image_hash;
    string private train_image_sha256;
    /// @dev MD5 of the training result; empty until `verify`.
    string private res_hash;
    string private res_sha256;
    bool private verified;

    /// @notice Emitted once, when the training result is recorded.
    event Verified(address indexed by, string res_hash, string res_sha256);

    constructor(
        string memory _model_id,
        string memory _organization_id,
        string memory _developer_id,
        string memory _dataset_id,
        string memory _train_image_hash,
        string memory _train_image_sha256
    ) {
        require(bytes(_model_id).length > 0, "model_id is empty");
        owner = msg.sender;
        deployed_block = block.number;
        model_id = _model_id;
        organization_id = _organization_id;
        developer_id = _developer_id;
        dataset_id = _dataset_id;
        train_image_hash = _train_image_hash;
        train_image_sha256 = _train_image_sha256;
    }

    /// @notice Every model field, including the training result once verified.
    function get_model_params()
        external
        view
        returns (
            string memory,
            string memory,
            string memory,
            string memory,
            string memory,
            string memory,
            string memory,
            string memory,
            bool
        )
    {
        return (
            model_id,
            organization_id,
            developer_id,
            dataset_id,
            train_image_hash,
            train_image_sha256,
            res_hash,
            res_sha256,
            verified
        );
    }

    /// @notice The dataset the model is trained on.
    function get_data_params() external view returns (string memory) {
        return dataset_id;
    }

    /// @notice Records the training result's hashes. Only the owner may call it, and only once.
    function verify(string calldata _res_hash, string calldata _res_sha256) external {
        require(msg.sender == owner, "only the contract owner can verify the model");
        require(!verified, "model already verified");
        require(bytes(_res_hash).length > 0, "res_hash is empty");
        verified = true;
        res_hash = _res_hash;
        res_sha256 = _res_sha256;
        emit Verified(msg.sender, _res_hash, _res_sha256);
    }
}
