// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceContext, IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";

/// @title Policy mock: a fixed answer
/// @notice Test-only. Answers the reason it was deployed with, unless the evidence is the
/// `passphrase` it was deployed with (non-empty), which it answers with 0: so a test can see that
/// a composer passes the evidence on.
contract PolicyMockFixed is IUpdatePolicy {
    uint256 private immutable _REASON;
    bytes32 private immutable _PASSPHRASE;

    /// @notice Answers `reason`, or 0 for the passphrase.
    /// @param reason What every check answers.
    /// @param passphrase Evidence whose keccak256 is this answers 0 (zero: none).
    constructor(uint256 reason, bytes32 passphrase) {
        _REASON = reason;
        _PASSPHRASE = passphrase;
    }

    /// @inheritdoc IUpdatePolicy
    function check(bytes32, bytes32, uint64, DeviceContext calldata, bytes calldata evidence)
        external
        view
        returns (uint256)
    {
        if (_PASSPHRASE != bytes32(0) && keccak256(evidence) == _PASSPHRASE) return 0;
        return _REASON;
    }
}
