// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ICatalog} from "../interfaces/ICatalog.sol";
import {RegistryAccess} from "./RegistryAccess.sol";

/// @title Providers, signers, authors, hardware classes and components.
/// @notice The catalog every release refers to.
abstract contract Catalog is ICatalog, RegistryAccess {
    /// @notice Longest provider, hardware class or component name in bytes.
    uint256 public constant MAX_NAME_LENGTH = 64;

    /// @notice Most keys a provider may ever have had (a key's ordinal is 8 bits in the release slot).
    uint256 public constant MAX_SIGNERS_PER_PROVIDER = 255;

    struct StoredProvider {
        bool barred;
        uint8 signerCount; // keys ever added; a key's ordinal is its place in that order (1-based)
        bool anyCompromised; // a key was retired as compromised: checks then read each release's key
        string name;
    }

    /// @dev One slot per key of a provider: when it may sign (docs/adr/0016-signer-rotation.md).
    struct SignerTerm {
        uint8 ordinal; // 1..255 among the provider's keys; 0: never added
        uint40 addedAt; // block time it was first added
        uint40 retiredAt; // block time it was retired; 0: it may sign now
        bool compromised;
        uint40 compromisedSince; // with `compromised`: what it signed from this time on is invalid
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
    mapping(uint32 providerId => mapping(address signer => SignerTerm)) private _providerSigners;
    mapping(address account => uint32 providerId) private _authorProviders;

    mapping(uint16 hardwareClassId => string) private _hardwareNames;
    mapping(bytes32 nameHash => uint16 hardwareClassId) private _hardwareByName;

    mapping(bytes32 componentId => StoredComponent) internal _components;
    mapping(uint32 index => bytes32 componentId) internal _componentIds;
    mapping(bytes32 componentId => string) private _componentNames;
    mapping(uint32 providerId => mapping(uint256 ordinal => address signer)) private _signerKeys;

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
        SignerTerm storage t = _providerSigners[providerId][signer];
        if (t.compromised) revert UpdateRegistrySignerCompromised(providerId, signer, t.compromisedSince);
        if (_maySign(t)) revert UpdateRegistrySignerAlreadyAdded(providerId, signer);
        if (t.ordinal == 0) {
            StoredProvider storage p = _providers[providerId];
            uint256 ordinal = uint256(p.signerCount) + 1;
            if (ordinal > MAX_SIGNERS_PER_PROVIDER) {
                revert UpdateRegistrySignerLimitReached(providerId, MAX_SIGNERS_PER_PROVIDER);
            }
            p.signerCount = uint8(ordinal);
            _signerKeys[providerId][ordinal] = signer;
            t.ordinal = uint8(ordinal);
            t.addedAt = uint40(block.timestamp);
        } else {
            // Back after a retirement: its term runs on from its first addition (no release was
            // published with it while it was retired, the registry refused them).
            t.retiredAt = 0;
        }
        emit ProviderSignerAdded(providerId, signer);
    }

    /// @inheritdoc ICatalog
    function removeProviderSigner(uint32 providerId, address signer) external onlyRole(ADMINISTRATOR_ROLE) {
        SignerTerm storage t = _providerSigners[providerId][signer];
        if (!_maySign(t)) revert UpdateRegistrySignerNotAuthorized(providerId, signer);
        t.retiredAt = uint40(block.timestamp);
        emit ProviderSignerRemoved(providerId, signer);
    }

    /// @inheritdoc ICatalog
    function retireCompromisedSigner(uint32 providerId, address signer, uint40 compromisedSince)
        external
        onlyEitherRole(ADMINISTRATOR_ROLE, AUDITOR_ROLE)
    {
        SignerTerm storage t = _providerSigners[providerId][signer];
        if (t.ordinal == 0) revert UpdateRegistrySignerNotAuthorized(providerId, signer);
        if (compromisedSince > block.timestamp) {
            revert UpdateRegistryCompromiseInFuture(compromisedSince, uint40(block.timestamp));
        }
        if (t.compromised && compromisedSince >= t.compromisedSince) {
            revert UpdateRegistrySignerCompromised(providerId, signer, t.compromisedSince);
        }
        if (t.retiredAt == 0) t.retiredAt = uint40(block.timestamp);
        t.compromised = true;
        t.compromisedSince = compromisedSince;
        _providers[providerId].anyCompromised = true;
        emit ProviderSignerCompromised(providerId, signer, compromisedSince, _msgSender());
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
        return _maySign(_providerSigners[providerId][signer]);
    }

    /// @inheritdoc ICatalog
    function providerSignerTerm(uint32 providerId, address signer)
        external
        view
        returns (uint8 ordinal, uint40 addedAt, uint40 retiredAt, bool compromised, uint40 compromisedSince)
    {
        SignerTerm storage t = _providerSigners[providerId][signer];
        return (t.ordinal, t.addedAt, t.retiredAt, t.compromised, t.compromisedSince);
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

    /// @dev Whether a key of the provider was ever retired as compromised (one slot with the bar).
    function _hasCompromisedSigner(uint32 providerId) internal view returns (bool) {
        return _providers[providerId].anyCompromised;
    }

    function _signerTerm(uint32 providerId, address signer) internal view returns (SignerTerm storage) {
        return _providerSigners[providerId][signer];
    }

    /// @dev The key with `ordinal` among the provider's and its term (none: the zero address's, empty).
    function _signerTermAt(uint32 providerId, uint8 ordinal) internal view returns (address signer, SignerTerm storage) {
        signer = _signerKeys[providerId][ordinal];
        return (signer, _providerSigners[providerId][signer]);
    }

    /// @dev Whether the key may sign a release now: added and not retired (a compromised key is retired).
    function _maySign(SignerTerm storage t) internal view returns (bool) {
        return t.ordinal != 0 && t.retiredAt == 0;
    }

    /// @dev THE rule for a published release (docs/adr/0016-signer-rotation.md; the agents' copy is
    /// agent/chain/provenFacts.ts `signerValidFor`): its key signs validly when it was added at or
    /// before the release's publication, not retired before it (a release published in the block
    /// that retired the key came before the retirement: the registry refuses it after), and, if the
    /// key is compromised, published before the compromise time.
    function _signedInTerm(SignerTerm storage t, uint256 publishedAt) internal view returns (bool) {
        return t.ordinal != 0 && t.addedAt <= publishedAt && (t.retiredAt == 0 || publishedAt <= t.retiredAt)
            && (!t.compromised || publishedAt < t.compromisedSince);
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
