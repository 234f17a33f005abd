// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/// @title Roles of the UpdateRegistry, for the policies administrators write.
/// @notice A policy asks the registry who holds a role, so there is one list of administrators,
/// auditors and trackers for the whole ledger.
abstract contract RegistryRoles {
    /// @notice The registry's administrators (the role id its AccessControl uses).
    bytes32 public constant ADMINISTRATOR_ROLE = keccak256("ADMINISTRATOR_ROLE");
    /// @notice The registry's tracker modules' operators.
    bytes32 public constant TRACKER_ROLE = keccak256("TRACKER_ROLE");

    /// @notice The caller does not hold `role` on the registry.
    error PolicyUnauthorized(address account, bytes32 role);

    IAccessControl internal immutable REGISTRY_ROLES;

    constructor(address registry_) {
        REGISTRY_ROLES = IAccessControl(registry_);
    }

    /// @notice The UpdateRegistry this policy was built for (whose roles it asks).
    function registry() external view returns (address) {
        return address(REGISTRY_ROLES);
    }

    modifier onlyRegistryRole(bytes32 role) {
        if (!REGISTRY_ROLES.hasRole(role, msg.sender)) revert PolicyUnauthorized(msg.sender, role);
        _;
    }
}
