// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ERC165} from "@openzeppelin/contracts/utils/introspection/ERC165.sol";
import {IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";
import {IUpdatePolicyReasons} from "../interfaces/IUpdatePolicyReasons.sol";
import {IReleaseRegistry} from "../interfaces/IReleaseRegistry.sol";
import {ReleaseState} from "../interfaces/UpdateRegistryTypes.sol";
import {RegistryRoles} from "./RegistryRoles.sol";
import {PolicyEvidence} from "./PolicyEvidence.sol";

/// @title The base of an update policy (issue 18: the policy kit).
/// @notice What every policy an administrator writes needs, as OpenZeppelin's bases give it:
/// - ERC-165: `policy attach` and the tools recognise a policy by its interface, not by calling
///   `check` with all-zero inputs (which a correct policy may refuse);
/// - the registry it was built for ({registry}) and its roles ({RegistryRoles}: one list of
///   administrators for the whole ledger, with `onlyRegistryRole`);
/// - named reason codes ({reasonName}): 0 is ALLOWED; a policy names its own codes by overriding
///   {reasonName}, so tools print `OUTSIDE_WINDOW`, not `1`;
/// - the release's publication time ({_publishedAt}), for rules such as a soak time;
/// - this policy's own evidence when the device brings parts for several policies ({_ownEvidence}),
///   and Merkle proofs that a device is on a list ({_deviceListed}), as the tools build them.
/// @dev `check`'s inputs `device.installed` and `evidence` are the device's claims: they are not
/// checked against the ledger (evidence is capped at 4 KiB by the tools). A policy that trusts
/// them must prove them itself (e.g. a Merkle proof against a root it stores).
abstract contract UpdatePolicyBase is IUpdatePolicy, IUpdatePolicyReasons, ERC165, RegistryRoles {
    /// @notice The answer of `check` that lets the update go ahead.
    uint256 public constant ALLOWED = 0;

    constructor(address registry_) RegistryRoles(registry_) {}

    /// @inheritdoc ERC165
    /// @dev Also declares {PolicyEvidence.ENVELOPE_MAGIC} as an interface id: this policy takes its
    /// own part of an evidence envelope ({_ownEvidence}), so the tools may send it one. Policies
    /// deployed before the envelope read evidence whole and do not declare it.
    function supportsInterface(bytes4 interfaceId) public view virtual override returns (bool) {
        return
            interfaceId == type(IUpdatePolicy).interfaceId ||
            interfaceId == type(IUpdatePolicyReasons).interfaceId ||
            interfaceId == PolicyEvidence.ENVELOPE_MAGIC ||
            super.supportsInterface(interfaceId);
    }

    /// @inheritdoc IUpdatePolicyReasons
    /// @dev Override to name your codes, and end with `return super.reasonName(reason);`.
    function reasonName(uint256 reason) public view virtual returns (string memory) {
        return reason == ALLOWED ? "ALLOWED" : "";
    }

    /// @notice When the release was published (its block's time) and whether the registry knows it.
    /// @dev One view call of the registry; an unknown release answers (false, 0) instead of reverting.
    function _publishedAt(bytes32 releaseId) internal view returns (bool known, uint40 publishedAt) {
        try IReleaseRegistry(address(REGISTRY_ROLES)).releaseState(releaseId) returns (ReleaseState memory state) {
            return (true, state.publishedAt);
        } catch {
            return (false, 0);
        }
    }

    /// @notice This policy's evidence: its own part when `evidence` is an envelope of per-policy
    /// parts ({PolicyEvidence}; empty when the envelope has none for it), else `evidence` whole.
    /// `wellFormed` is false for an envelope whose parts do not add up: answer a reason, never revert.
    function _ownEvidence(bytes calldata evidence) internal view returns (bool wellFormed, bytes calldata own) {
        if (!PolicyEvidence.isEnvelope(evidence)) return (true, evidence);
        return PolicyEvidence.partFor(evidence, address(this));
    }

    /// @notice Whether `proof` (abi.encode(bytes32[] siblings), at most `maxLength` of them) shows
    /// `deviceId` in the device tree with this `root` ({PolicyEvidence.deviceLeaf}, sorted pairs).
    /// `wellFormed` is false when `proof` is not in that form.
    function _deviceListed(bytes32 deviceId, bytes calldata proof, bytes32 root, uint256 maxLength)
        internal
        pure
        returns (bool wellFormed, bool listed)
    {
        bytes32[] memory siblings;
        (wellFormed, siblings) = PolicyEvidence.decodeProof(proof, maxLength);
        if (!wellFormed) return (false, false);
        return (true, MerkleProof.verify(siblings, root, PolicyEvidence.deviceLeaf(deviceId)));
    }
}
