// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ICatalog} from "../interfaces/ICatalog.sol";
import {RegistryAccess} from "./RegistryAccess.sol";

/// @title Providers, signers, authors, hardware classes and components.
/// @notice The catalog every release refers to.
abstract contract Catalog is ICatalog, RegistryAccess {
    /// @notice Longest provider, hardware class or component name in bytes.
    uint256 public constant MAX_NAME_LENGTH = 64;

    struct StoredProvider {
        bool barred;
        string name;
    }

    /// @dev One slot: who owns the component and what it has published so far.
    struct StoredComponent {
        uint32 provider; // 0: not registered
        uint32 index; // 1-based, dense; release slots refer to components by it
        uint64 latestVersion; // highest version ever published (revoked ones included)
        uint32 releaseCount;
        uint32 hardwareRuns; // runs of consecutive releases with one hardware list (Releases.sol)
    }

    uint32 private _providerCount;
    uint16 private _hardwareClassCount;
    uint32 private _componentCount;

    mapping(uint32 providerId => StoredProvider) private _providers;
    mapping(bytes32 nameHash => uint32 providerId) private _providerByName;
    mapping(uint32 providerId => mapping(address signer => bool)) private _providerSigners;
    mapping(address account => uint32 providerId) private _authorProviders;

    mapping(uint16 hardwareClassId => string) private _hardwareNames;
    mapping(bytes32 nameHash => uint16 hardwareClassId) private _hardwareByName;

    mapping(bytes32 componentId => StoredComponent) internal _components;
    mapping(uint32 index => bytes32 componentId) internal _componentIds;
    mapping(bytes32 componentId => string) private _componentNames;

    // ---------------------------------------------------------------- providers

    /// @inheritdoc ICatalog
    function registerProvider(string calldata name) external onlyRole(ADMINISTRATOR_ROLE) returns (uint32 id) {
        bytes32 nameHash = _checkName(name);
        if (_providerByName[nameHash] != 0) revert UpdateRegistryProviderNameTaken(name);
        id = ++_providerCount;
        _providers[id].name = name;
        _providerByName[nameHash] = id;
        emit ProviderRegistered(id, name);
    }

    /// @inheritdoc ICatalog
    function addProviderSigner(uint32 providerId, address signer) external onlyRole(ADMINISTRATOR_ROLE) {
        _requireProvider(providerId);
        if (signer == address(0)) revert UpdateRegistryZeroAddress();
        if (_providerSigners[providerId][signer]) revert UpdateRegistrySignerAlreadyAdded(providerId, signer);
        _providerSigners[providerId][signer] = true;
        emit ProviderSignerAdded(providerId, signer);
    }

    /// @inheritdoc ICatalog
    function removeProviderSigner(uint32 providerId, address signer) external onlyRole(ADMINISTRATOR_ROLE) {
        if (!_providerSigners[providerId][signer]) revert UpdateRegistrySignerNotAuthorized(providerId, signer);
        delete _providerSigners[providerId][signer];
        emit ProviderSignerRemoved(providerId, signer);
    }

    /// @inheritdoc ICatalog
    function barProvider(uint32 providerId, string calldata reason)
        external
        onlyEitherRole(ADMINISTRATOR_ROLE, AUDITOR_ROLE)
    {
        _requireProvider(providerId);
        StoredProvider storage p = _providers[providerId];
        if (p.barred) revert UpdateRegistryProviderBarred(providerId);
        p.barred = true;
        emit ProviderBarred(providerId, _msgSender(), reason);
    }

    /// @inheritdoc ICatalog
    function unbarProvider(uint32 providerId) external onlyRole(ADMINISTRATOR_ROLE) {
        _requireProvider(providerId);
        StoredProvider storage p = _providers[providerId];
        if (!p.barred) revert UpdateRegistryProviderNotBarred(providerId);
        p.barred = false;
        emit ProviderUnbarred(providerId, _msgSender());
    }

    // ---------------------------------------------------------------- authors

    /// @inheritdoc ICatalog
    function registerAuthor(address account, uint32 providerId) external onlyRole(ADMINISTRATOR_ROLE) {
        _requireProvider(providerId);
        if (account == address(0)) revert UpdateRegistryZeroAddress();
        uint32 current = _authorProviders[account];
        if (current != 0) revert UpdateRegistryAuthorAlreadyRegistered(account, current);
        _authorProviders[account] = providerId;
        _grantRole(AUTHOR_ROLE, account);
        emit AuthorRegistered(account, providerId);
    }

    /// @inheritdoc ICatalog
    function removeAuthor(address account) external onlyRole(ADMINISTRATOR_ROLE) {
        if (_authorProviders[account] == 0) revert UpdateRegistryNotAuthorOfProvider(account, 0);
        _revokeRole(AUTHOR_ROLE, account);
    }

    /// @notice Grants `role` to `account`, except the author role (see {registerAuthor}).
    /// @dev An author always belongs to a provider, so the author role is granted only through
    /// registerAuthor; every other role goes through AccessControl as usual.
    function grantRole(bytes32 role, address account) public virtual override {
        if (role == AUTHOR_ROLE) {
            _checkRole(getRoleAdmin(role)); // an unauthorised caller hears that first
            revert UpdateRegistryAuthorNeedsProvider(account);
        }
        super.grantRole(role, account);
    }

    /// @dev Losing the author role, however it happens (removeAuthor, revokeRole, renounceRole),
    /// also ends the provider membership, so the two never disagree.
    function _revokeRole(bytes32 role, address account) internal virtual override returns (bool revoked) {
        revoked = super._revokeRole(role, account);
        uint32 providerId = _authorProviders[account];
        if (role == AUTHOR_ROLE && providerId != 0) {
            delete _authorProviders[account];
            emit AuthorRemoved(account, providerId);
        }
    }

    // ---------------------------------------------------------------- hardware and components

    /// @inheritdoc ICatalog
    function registerHardwareClass(string calldata name) external onlyRole(ADMINISTRATOR_ROLE) returns (uint16 id) {
        bytes32 nameHash = _checkName(name);
        if (_hardwareByName[nameHash] != 0) revert UpdateRegistryHardwareClassNameTaken(name);
        if (_hardwareClassCount == type(uint16).max) revert UpdateRegistryHardwareClassLimitReached(type(uint16).max);
        id = ++_hardwareClassCount;
        _hardwareNames[id] = name;
        _hardwareByName[nameHash] = id;
        emit HardwareClassRegistered(id, name);
    }

    /// @inheritdoc ICatalog
    function registerComponent(string calldata name, uint32 providerId)
        external
        onlyRole(ADMINISTRATOR_ROLE)
        returns (bytes32 id)
    {
        _requireProvider(providerId);
        id = _checkName(name);
        if (_components[id].provider != 0) revert UpdateRegistryComponentExists(id);
        uint32 index = ++_componentCount;
        _components[id] = StoredComponent({provider: providerId, index: index, latestVersion: 0, releaseCount: 0, hardwareRuns: 0});
        _componentIds[index] = id;
        _componentNames[id] = name;
        emit ComponentRegistered(id, providerId, name);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ICatalog
    function provider(uint32 providerId) external view returns (string memory name, bool barred) {
        _requireProvider(providerId);
        StoredProvider storage p = _providers[providerId];
        return (p.name, p.barred);
    }

    /// @inheritdoc ICatalog
    function providerCount() external view returns (uint32) {
        return _providerCount;
    }

    /// @inheritdoc ICatalog
    function isProviderSigner(uint32 providerId, address signer) public view returns (bool) {
        return _providerSigners[providerId][signer];
    }

    /// @inheritdoc ICatalog
    function authorProvider(address account) public view returns (uint32) {
        return _authorProviders[account];
    }

    /// @inheritdoc ICatalog
    function hardwareClass(uint16 hardwareClassId) external view returns (string memory) {
        if (!_isHardwareClass(hardwareClassId)) revert UpdateRegistryUnknownHardwareClass(hardwareClassId);
        return _hardwareNames[hardwareClassId];
    }

    /// @inheritdoc ICatalog
    function hardwareClassCount() external view returns (uint16) {
        return _hardwareClassCount;
    }

    /// @inheritdoc ICatalog
    function component(bytes32 componentId)
        external
        view
        returns (string memory name, uint32 owner, uint64 latestVersion, uint32 releaseCount)
    {
        StoredComponent memory c = _requireComponent(componentId);
        return (_componentNames[componentId], c.provider, c.latestVersion, c.releaseCount);
    }

    // ---------------------------------------------------------------- internal

    function _isProviderBarred(uint32 providerId) internal view returns (bool) {
        return _providers[providerId].barred;
    }

    function _providerName(uint32 providerId) internal view returns (string memory) {
        return _providers[providerId].name;
    }

    function _isHardwareClass(uint16 hardwareClassId) internal view returns (bool) {
        return hardwareClassId != 0 && hardwareClassId <= _hardwareClassCount;
    }

    function _requireProvider(uint32 providerId) internal view {
        if (providerId == 0 || providerId > _providerCount) revert UpdateRegistryUnknownProvider(providerId);
    }

    function _requireComponent(bytes32 componentId) internal view returns (StoredComponent memory c) {
        c = _components[componentId];
        if (c.provider == 0) revert UpdateRegistryUnknownComponent(componentId);
    }

    /// @dev Checks a name's length and returns its hash (the key names are unique by).
    function _checkName(string calldata name) private pure returns (bytes32) {
        uint256 length = bytes(name).length;
        if (length == 0) revert UpdateRegistryEmptyName();
        if (length > MAX_NAME_LENGTH) revert UpdateRegistryNameTooLong(length, MAX_NAME_LENGTH);
        return keccak256(bytes(name));
    }
}
