// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title mlmesh AccessLog contract (docs/security.md, "Grants on the ledger?").
/// @notice One per chain: the append-only record of every share and unshare of a dataset or a
///         model that the Registry accepted. Only the account that deployed it (the Ledger's
///         signer) may append; nothing can change or remove an entry once appended. The actor
///         is stored as a hash of the token's subject, never the subject itself.
contract AccessLog {
    /// @notice Marks the contract as an mlmesh AccessLog, so a reader can tell it from any other contract.
    string public constant KIND = "mlmesh.AccessLog/1";

    /// @notice Account that deployed the contract (the Ledger's signer): the only one that may append.
    address public immutable owner;

    /// @notice Block in which the contract was deployed.
    uint256 public immutable deployed_block;

    /// @notice One share or unshare. `eventTime` is the Registry's time in Unix microseconds.
    struct Entry {
        string resourceKind;
        string resourceId;
        string action;
        string grantee;
        bool isPublic;
        string actorOrg;
        bytes32 actorSubjectHash;
        uint64 eventTime;
        uint64 blockNumber;
    }

    Entry[] private entries;
    mapping(bytes32 => uint256[]) private byResource;

    /// @notice Emitted once per appended entry.
    event AccessRecorded(
        uint256 indexed index,
        bytes32 indexed resourceKey,
        string resourceKind,
        string resourceId,
        string action,
        string grantee,
        bool isPublic,
        string actorOrg,
        bytes32 actorSubjectHash,
        uint64 eventTime
    );

    constructor() {
        owner = msg.sender;
        deployed_block = block.number;
    }

    /// @notice The key entries of one resource are listed under.
    function resourceKey(string memory resourceKind, string memory resourceId) public pure returns (bytes32) {
        return keccak256(abi.encode(resourceKind, resourceId));
    }

    /// @notice Appends one entry; returns its index.
    function record(
        string memory resourceKind,
        string memory resourceId,
        string memory action,
        string memory grantee,
        bool isPublic,
        string memory actorOrg,
        bytes32 actorSubjectHash,
        uint64 eventTime
    ) external returns (uint256 index) {
        require(msg.sender == owner, "only the owner may append");
        require(bytes(resourceKind).length > 0, "resourceKind is empty");
        require(bytes(resourceId).length > 0, "resourceId is empty");
        require(bytes(action).length > 0, "action is empty");
        index = entries.length;
        // Field by field, strings in memory: eight calldata strings and a struct literal are too deep
        // for the EVM's stack.
        Entry storage e = entries.push();
        e.resourceKind = resourceKind;
        e.resourceId = resourceId;
        e.action = action;
        e.grantee = grantee;
        e.isPublic = isPublic;
        e.actorOrg = actorOrg;
        e.actorSubjectHash = actorSubjectHash;
        e.eventTime = eventTime;
        e.blockNumber = uint64(block.number);
        _index(index, e);
    }

    function _index(uint256 index, Entry storage e) private {
        bytes32 key = resourceKey(e.resourceKind, e.resourceId);
        byResource[key].push(index);
        emit AccessRecorded(index, key, e.resourceKind, e.resourceId, e.action, e.grantee, e.isPublic, e.actorOrg,
                            e.actorSubjectHash, e.eventTime);
    }

    /// @notice How many entries the log holds.
    function count() external view returns (uint256) {
        return entries.length;
    }

    /// @notice The entry at `index` (reverts past the end).
    function entry(uint256 index) external view returns (Entry memory) {
        require(index < entries.length, "no entry at this index");
        return entries[index];
    }

    /// @notice Indexes of one resource's entries, oldest first.
    function indexesOf(string calldata resourceKind, string calldata resourceId)
        external
        view
        returns (uint256[] memory)
    {
        return byResource[resourceKey(resourceKind, resourceId)];
    }
}
