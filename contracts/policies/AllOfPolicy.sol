// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceContext, IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";
import {ComposedPolicy} from "./ComposedPolicy.sol";

/// @title All-of composer: a device may take a release only if every member allows it.
/// @notice Members are asked in order; the first refusal ends the check and is answered with the
/// refusing member's index and reason encoded as {ComposedPolicy} describes
/// (`(index + 1) << 128 | innerReason` for leaf members).
contract AllOfPolicy is ComposedPolicy {
    /// @notice Composes `members_`.
    /// @param members_ The member policies, in the order they are asked (1 to {MAX_MEMBERS}).
    constructor(IUpdatePolicy[] memory members_) ComposedPolicy(members_) {}

    /// @inheritdoc IUpdatePolicy
    /// @dev 0 if every member answers 0; else the first refusal, encoded ({decodeRefusal}).
    function check(bytes32 releaseId, bytes32 component, uint64 version, DeviceContext calldata device, bytes calldata evidence)
        external
        view
        returns (uint256)
    {
        bytes memory data = abi.encodeCall(IUpdatePolicy.check, (releaseId, component, version, device, evidence));
        uint256 n = _memberCount();
        for (uint256 i = 0; i < n; ++i) {
            uint256 reason = _ask(i, data, n - i);
            if (reason != 0) return encodeRefusal(i, reason);
        }
        return 0;
    }
}
