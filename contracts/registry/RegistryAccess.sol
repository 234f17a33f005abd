// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IUpdateRegistry} from "../interfaces/IUpdateRegistry.sol";

/// @title Roles of the update registry.
/// @notice Administrator, author, auditor and tracker roles under a two-step default admin.
/// @dev The default admin (one account; transfer is two-step with a delay, per OpenZeppelin's
/// AccessControlDefaultAdminRules) administers ADMINISTRATOR_ROLE; administrators administer the
/// other three roles.
abstract contract RegistryAccess is AccessControlDefaultAdminRules {
    /// @notice Runs the registry: catalog, authors, devices; grants the other roles.
    bytes32 public constant ADMINISTRATOR_ROLE = keccak256("ADMINISTRATOR_ROLE");
    /// @notice Publishes releases for the provider it belongs to.
    bytes32 public constant AUTHOR_ROLE = keccak256("AUTHOR_ROLE");
    /// @notice Revokes and flags releases, bars providers.
    bytes32 public constant AUDITOR_ROLE = keccak256("AUDITOR_ROLE");
    /// @notice Registers and retires tracker-module keys.
    bytes32 public constant TRACKER_ROLE = keccak256("TRACKER_ROLE");

    constructor(uint48 adminTransferDelay, address initialAdmin)
        AccessControlDefaultAdminRules(adminTransferDelay, initialAdmin)
    {
        _setRoleAdmin(AUTHOR_ROLE, ADMINISTRATOR_ROLE);
        _setRoleAdmin(AUDITOR_ROLE, ADMINISTRATOR_ROLE);
        _setRoleAdmin(TRACKER_ROLE, ADMINISTRATOR_ROLE);
        _grantRole(ADMINISTRATOR_ROLE, initialAdmin);
    }

    /// @dev The operational administrator role moves with the default admin: a handover (often made
    /// because the old key is at risk) leaves the old account with no power at all.
    function _acceptDefaultAdminTransfer() internal virtual override {
        address previous = defaultAdmin();
        super._acceptDefaultAdminTransfer();
        _revokeRole(ADMINISTRATOR_ROLE, previous);
        _grantRole(ADMINISTRATOR_ROLE, defaultAdmin());
    }

    /// @dev Reverts unless the caller has `roleA` or `roleB`.
    modifier onlyEitherRole(bytes32 roleA, bytes32 roleB) {
        if (!hasRole(roleA, _msgSender()) && !hasRole(roleB, _msgSender())) {
            revert IUpdateRegistry.UpdateRegistryUnauthorized(_msgSender(), roleA, roleB);
        }
        _;
    }
}
