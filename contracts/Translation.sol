// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice What a Translation contract reads from the mlmesh Model contract it points at.
interface IMlmeshModel {
    function KIND() external view returns (string memory);

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
        );
}

/// @title mlmesh Translation contract (D3.4 section 7.4: a trained model translated to ONNX).
/// @notice Anchors one translation: which verified model (by its Model contract and training-result
///         SHA-256) became which ONNX bytes, by which converter, and how closely the two agree.
///         Every field is set once by the constructor and never changes. Decimal figures are text
///         (Solidity has no floating point), e.g. "3.4e-07".
contract Translation {
    /// @notice Marks the contract as an mlmesh Translation, so a reader can tell it from any other contract.
    string public constant KIND = "mlmesh.Translation/1";

    /// @notice Account that deployed the contract (the Ledger's signer).
    address public immutable owner;

    /// @notice Block in which the contract was deployed.
    uint256 public immutable deployed_block;

    /// @notice Every field of a translation: the constructor's input and `get_translation_params`' output.
    /// @dev One struct instead of thirteen values keeps the ABI coder within the EVM's stack.
    ///      `source_sha256` is the SHA-256 of the source model's trained artifact (its res_sha256);
    ///      `max_abs_diff`, `max_rel_diff`, `atol` and `rtol` are decimal text.
    struct Params {
        string translation_id;
        string model_id;
        address model_contract;
        string source_sha256;
        string onnx_md5;
        string onnx_sha256;
        string converter;
        uint256 opset;
        string max_abs_diff;
        string max_rel_diff;
        string atol;
        string rtol;
        bool parity_passed;
    }

    Params private params;

    constructor(Params memory p) {
        require(bytes(p.translation_id).length > 0, "translation_id is empty");
        require(p.opset > 0, "opset must be positive");
        _check_source(p.model_contract, p.model_id, p.source_sha256);
        owner = msg.sender;
        deployed_block = block.number;
        params = p;
    }

    /// @dev Refuses anything but a verified mlmesh Model contract of `_model_id` whose res_sha256 is `_source_sha256`.
    function _check_source(address _model_contract, string memory _model_id, string memory _source_sha256)
        private
        view
    {
        require(_model_contract.code.length > 0, "model_contract: no contract at this address");
        bool is_model;
        try IMlmeshModel(_model_contract).KIND() returns (string memory kind) {
            is_model = keccak256(bytes(kind)) == keccak256(bytes("mlmesh.Model/1"));
        } catch {
            is_model = false;
        }
        require(is_model, "model_contract: not an mlmesh Model contract");
        (string memory m_model_id, , , , , , , string memory m_res_sha256, bool m_verified) =
            IMlmeshModel(_model_contract).get_model_params();
        require(m_verified, "model_contract: the model is not verified");
        require(
            keccak256(bytes(m_res_sha256)) == keccak256(bytes(_source_sha256)),
            "source_sha256 does not match the model's res_sha256"
        );
        require(
            keccak256(bytes(m_model_id)) == keccak256(bytes(_model_id)),
            "model_id does not match the Model contract's model_id"
        );
    }

    /// @notice Every field of the translation, as the tuple the constructor took.
    function get_translation_params() external view returns (Params memory) {
        return params;
    }
}
