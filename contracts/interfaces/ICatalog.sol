// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Catalog of the update registry: providers, their signers and authors, hardware classes
/// and components.
/// @notice Part of the IUpdateRegistry interface.
interface ICatalog {
    // ---------------------------------------------------------------- errors

    /// @notice A name was empty.
    error UpdateRegistryEmptyName();
    /// @notice A name was longer than the registry accepts.
    error UpdateRegistryNameTooLong(uint256 length, uint256 maxLength);
    /// @notice A provider with this name is already registered.
    error UpdateRegistryProviderNameTaken(string name);
    /// @notice No provider has this id.
    error UpdateRegistryUnknownProvider(uint32 provider);
    /// @notice The provider is barred from publishing (CAP-11.3-c).
    error UpdateRegistryProviderBarred(uint32 provider);
    /// @notice The provider is not barred, so there is no bar to lift.
    error UpdateRegistryProviderNotBarred(uint32 provider);
    /// @notice The zero address was given where an account is needed.
    error UpdateRegistryZeroAddress();
    /// @notice The signer is already allowed to sign the provider's releases.
    error UpdateRegistrySignerAlreadyAdded(uint32 provider, address signer);
    /// @notice The signer is not one of the provider's signers.
    error UpdateRegistrySignerNotAuthorized(uint32 provider, address signer);
    /// @notice The key was retired as compromised (what it signed from `since` on is invalid): it
    /// never signs again, and a later compromise time would trust more of what it signed.
    error UpdateRegistrySignerCompromised(uint32 provider, address signer, uint40 since);
    /// @notice The provider has had as many keys as a release slot can name.
    error UpdateRegistrySignerLimitReached(uint32 provider, uint256 limit);
    /// @notice A compromise time after the current block's time.
    error UpdateRegistryCompromiseInFuture(uint40 since, uint40 now);
    /// @notice The account is already an author (of `provider`).
    error UpdateRegistryAuthorAlreadyRegistered(address account, uint32 provider);
    /// @notice The author role is granted only with a provider: use {registerAuthor}.
    error UpdateRegistryAuthorNeedsProvider(address account);
    /// @notice The account is not an author of `provider`.
    error UpdateRegistryNotAuthorOfProvider(address account, uint32 provider);
    /// @notice A hardware class with this name is already registered.
    error UpdateRegistryHardwareClassNameTaken(string name);
    /// @notice No hardware class has this id.
    error UpdateRegistryUnknownHardwareClass(uint16 hardwareClass);
    /// @notice Every hardware class id is in use.
    error UpdateRegistryHardwareClassLimitReached(uint256 limit);
    /// @notice A component with this name is already registered.
    error UpdateRegistryComponentExists(bytes32 component);
    /// @notice No component has this id.
    error UpdateRegistryUnknownComponent(bytes32 component);

    // ---------------------------------------------------------------- events

    /// @notice A provider was registered.
    event ProviderRegistered(uint32 indexed provider, string name);
    /// @notice `signer` may now sign releases of `provider`.
    event ProviderSignerAdded(uint32 indexed provider, address indexed signer);
    /// @notice `signer` may no longer sign releases of `provider` (retired: what it signed stays valid).
    event ProviderSignerRemoved(uint32 indexed provider, address indexed signer);
    /// @notice `signer` of `provider` was retired as compromised by `by`: the releases it signed
    /// that were published at or after `since` are invalid (docs/adr/0016-signer-rotation.md).
    event ProviderSignerCompromised(uint32 indexed provider, address indexed signer, uint40 since, address indexed by);
    /// @notice The provider was barred from publishing (CAP-11.3-c).
    event ProviderBarred(uint32 indexed provider, address indexed by, string reason);
    /// @notice The bar on the provider was lifted by an administrator.
    event ProviderUnbarred(uint32 indexed provider, address indexed by);
    /// @notice `account` became an author of `provider`.
    event AuthorRegistered(address indexed account, uint32 indexed provider);
    /// @notice `account` is no longer an author of `provider`.
    event AuthorRemoved(address indexed account, uint32 indexed provider);
    /// @notice A hardware class was registered.
    event HardwareClassRegistered(uint16 indexed hardwareClass, string name);
    /// @notice A component was registered, owned by `provider`.
    event ComponentRegistered(bytes32 indexed component, uint32 indexed provider, string name);

    // ---------------------------------------------------------------- actions

    /// @notice Registers a provider and returns its id (1, 2, ...).
    /// @dev Requirements: caller is an administrator; `name` is 1..64 bytes and unused.
    /// Emits a {ProviderRegistered} event.
    function registerProvider(string calldata name) external returns (uint32 provider);

    /// @notice Allows `signer` (an EOA or an ERC-1271 contract) to sign the provider's releases,
    /// from this block on. A key retired earlier (not as compromised) signs again.
    /// @dev Requirements: caller is an administrator; provider known; signer non-zero, not able to
    /// sign now, not compromised; the provider has had fewer than 255 keys.
    /// Emits a {ProviderSignerAdded} event.
    function addProviderSigner(uint32 provider, address signer) external;

    /// @notice Retires `signer`: it signs no new release of the provider; the releases it signed
    /// stay valid (a release is judged by its key's term at its publication). To rotate a key, add
    /// the new one first.
    /// @dev Requirements: caller is an administrator; signer may sign the provider's releases now.
    /// Emits a {ProviderSignerRemoved} event.
    function removeProviderSigner(uint32 provider, address signer) external;

    /// @notice Retires `signer` as compromised since `compromisedSince` (a block time): the
    /// provider's releases it signed that were published at or after that time become invalid
    /// (`checkInstallable` answers {InstallCheck.SignerCompromised}, they witness no dependency,
    /// devices refuse them); those published before stay valid. Works on a key already retired,
    /// and again with an earlier time; the key can never be added again.
    /// @dev Requirements: caller is an administrator or an auditor; the key was the provider's;
    /// `compromisedSince` not after this block; earlier than a compromise time already given.
    /// Emits {ProviderSignerCompromised}, which is also the key's retirement if it could still sign.
    function retireCompromisedSigner(uint32 provider, address signer, uint40 compromisedSince) external;

    /// @notice Bars a provider from publishing (CAP-11.3-c). Its releases report
    /// {InstallCheck.ProviderBarred}.
    /// @dev Requirements: caller is an administrator or an auditor; provider known, not barred.
    /// Emits a {ProviderBarred} event.
    function barProvider(uint32 provider, string calldata reason) external;

    /// @notice Lifts the bar on a provider.
    /// @dev Requirements: caller is an administrator; provider barred.
    /// Emits a {ProviderUnbarred} event.
    function unbarProvider(uint32 provider) external;

    /// @notice Makes `account` an author of `provider` (grants the author role).
    /// @dev Requirements: caller is an administrator; provider known; account non-zero and not
    /// already an author. Emits {AuthorRegistered} and {IAccessControl-RoleGranted} events.
    function registerAuthor(address account, uint32 provider) external;

    /// @notice Removes `account` as an author (revokes the author role).
    /// @dev Requirements: caller is an administrator; account is an author.
    /// Emits {AuthorRemoved} and {IAccessControl-RoleRevoked} events.
    function removeAuthor(address account) external;

    /// @notice Registers a hardware class (e.g. "acme-board-rev-b") and returns its id (1, 2, ...).
    /// @dev Requirements: caller is an administrator; `name` is 1..64 bytes and unused.
    /// Emits a {HardwareClassRegistered} event.
    function registerHardwareClass(string calldata name) external returns (uint16 hardwareClass);

    /// @notice Registers a component (e.g. "acme.bootloader") owned by `provider`; its id is
    /// keccak256 of its name.
    /// @dev Requirements: caller is an administrator; provider known; name 1..64 bytes and unused.
    /// Emits a {ComponentRegistered} event.
    function registerComponent(string calldata name, uint32 provider) external returns (bytes32 component);

    // ---------------------------------------------------------------- views

    /// @notice The provider's name and whether it is barred. Reverts for an unknown provider.
    function provider(uint32 providerId) external view returns (string memory name, bool barred);

    /// @notice The number of registered providers (ids run from 1 to this number).
    function providerCount() external view returns (uint32);

    /// @notice Whether `signer` may sign new releases of `providerId` now (added, not retired).
    /// Whether a published release's key was valid for it: {IReleaseRegistry-releaseSigner}.
    function isProviderSigner(uint32 providerId, address signer) external view returns (bool);

    /// @notice A key's term with the provider: its ordinal among the provider's keys (0: never
    /// added), the block times it was added and retired (0: not retired), and whether it was
    /// retired as compromised and since when.
    function providerSignerTerm(uint32 providerId, address signer)
        external
        view
        returns (uint8 ordinal, uint40 addedAt, uint40 retiredAt, bool compromised, uint40 compromisedSince);

    /// @notice The provider `account` is an author of, or 0.
    function authorProvider(address account) external view returns (uint32);

    /// @notice The hardware class's name. Reverts for an unknown class.
    function hardwareClass(uint16 hardwareClassId) external view returns (string memory name);

    /// @notice The number of registered hardware classes (ids run from 1 to this number).
    function hardwareClassCount() external view returns (uint16);

    /// @notice A component's name, owner, latest published version (0 if none) and release count.
    /// Reverts for an unknown component.
    function component(bytes32 componentId)
        external
        view
        returns (string memory name, uint32 owner, uint64 latestVersion, uint32 releaseCount);
}
