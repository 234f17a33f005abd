// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {InstalledComponent} from "./UpdateRegistryTypes.sol";

/// @notice The device a policy is asked about, as its enrolment on the ledger describes it.
struct DeviceContext {
    bytes32 deviceId;
    uint16 hardwareClass;
    bytes32 network;
    bytes32 region; // a geographic region or a logical group
    InstalledComponent[] installed;
}

/// @title An update policy an administrator writes (X.1368 App. II: "smart contracts written in
/// advance by administrators drive firmware and software updates").
/// @notice Attached to a component or to one release in {IUpdatePolicies}; the registry's
/// installable check for a device, the firmware server, the tracker and the device agent all ask
/// it, so its rule lives on the ledger only.
interface IUpdatePolicy {
    /// @notice Whether `device` may take the release now. 0 means yes; any other value is the
    /// policy's reason code (each policy documents its codes). `evidence` is what the device
    /// brings (e.g. the Merkle proof of its rollout cohort), empty when it has none.
    /// @dev A view: it must not change state, and should stay within a few hundred thousand gas
    /// (the checker calls it with a gas cap and fails closed).
    function check(bytes32 releaseId, bytes32 component, uint64 version, DeviceContext calldata device, bytes calldata evidence)
        external
        view
        returns (uint256 reason);
}
