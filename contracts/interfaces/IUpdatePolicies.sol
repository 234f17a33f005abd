// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {InstallCheck, Release} from "./UpdateRegistryTypes.sol";
import {DeviceContext, IUpdatePolicy} from "./IUpdatePolicy.sol";

/// @title Where administrators attach update policies, and the one check every agent asks.
/// @notice A policy is attached to a component or to one release; checkUpdate runs the registry's
/// installable check for the device, then the policy's rule.
interface IUpdatePolicies {
    /// @notice The caller lacks the registry's ADMINISTRATOR_ROLE.
    error UpdatePoliciesUnauthorized(address account);
    /// @notice A policy address with no code.
    error UpdatePoliciesNotAContract(address policy);
    /// @notice The call to the policy may have failed for want of gas the caller did not give:
    /// call checkUpdate with more gas (at least 64/63 of POLICY_GAS beyond the registry's check).
    error UpdatePoliciesOutOfGas();
    /// @notice Nothing is attached to `target`.
    error UpdatePoliciesNothingAttached(bytes32 target);
    /// @notice `policy` was built for another registry (its `registry()` is `builtFor`): its roles
    /// and release reads would be another ledger's.
    error UpdatePoliciesWrongRegistry(address policy, address builtFor);

    /// @notice `policy` now decides for `target` (a component id, or one release id).
    event PolicyAttached(bytes32 indexed target, address indexed policy, address indexed by);
    /// @notice `target` has no policy any more.
    event PolicyDetached(bytes32 indexed target, address indexed policy, address indexed by);

    /// @notice Attaches `policy` to a component id or a release id (a release's own policy
    /// replaces its component's). Administrators only. A policy that names its registry
    /// (`registry()`, as the policy kit's do) must name this one.
    function attachPolicy(bytes32 target, IUpdatePolicy policy) external;

    /// @notice Removes the policy of `target`. Administrators only.
    function detachPolicy(bytes32 target) external;

    /// @notice The policy that decides for this release: its own, else its component's (zero if none).
    function policyFor(bytes32 releaseId, bytes32 component) external view returns (address);

    /// @notice The registry's installable check for this device, then the attached policy's:
    /// `verdict` is the registry's; when the registry allows it (installable, or only vulnerable),
    /// `policy` is the policy asked and `reason` its answer (0: allowed). A policy that reverts or
    /// runs out of its gas answers POLICY_FAILED: the check fails closed.
    function checkUpdate(Release calldata release, DeviceContext calldata device, bytes calldata evidence)
        external
        view
        returns (InstallCheck verdict, address policy, uint256 reason);
}
