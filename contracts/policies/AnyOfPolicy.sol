// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {DeviceContext, IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";
import {ComposedPolicy} from "./ComposedPolicy.sol";

/// @title Any-of composer: a device may take a release if at least one member allows it.
/// @notice Members are asked in order until one allows; when none does, the answer is the first
/// member's refusal, encoded as {ComposedPolicy} describes (`(0 + 1) << 128 | innerReason` for a
/// leaf first member). A member that fails counts as refusing, and the next members are still asked.
contract AnyOfPolicy is ComposedPolicy {
    /// @notice Composes `members_`.
    /// @param members_ The member policies, in the order they are asked (1 to {MAX_MEMBERS}).
    constructor(IUpdatePolicy[] memory members_) ComposedPolicy(members_) {}

    /// @inheritdoc IUpdatePolicy
    /// @dev 0 as soon as a member answers 0; else the first refusal, encoded ({decodeRefusal}).
    function check(bytes32 releaseId, bytes32 component, uint64 version, DeviceContext calldata device, bytes calldata evidence)
        external
        view
        returns (uint256)
    {
        bytes memory data = abi.encodeCall(IUpdatePolicy.check, (releaseId, component, version, device, evidence));
        uint256 n = _memberCount();
        uint256 first = 0;
        for (uint256 i = 0; i < n; ++i) {
            uint256 reason = _ask(i, data, n - i);
            if (reason == 0) return 0;
            if (first == 0) first = encodeRefusal(i, reason);
        }
        return first;
    }
}
