// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IUpdateRegistry} from "../interfaces/IUpdateRegistry.sol";
import {IFleetRegistry} from "../interfaces/IFleetRegistry.sol";
import {IUpdatePolicies} from "../interfaces/IUpdatePolicies.sol";
import {DeviceContext} from "../interfaces/IUpdatePolicy.sol";
// solhint-disable-next-line max-line-length
import {Release, ReleaseState, ReleaseStatus, InstallCheck, InstalledComponent, DeviceRecord, DeviceStanding} from "../interfaces/UpdateRegistryTypes.sol";

/// @notice What one update check asks of the ledger (docs/adr/0012-one-read-per-check.md).
/// @dev `policies` zero: the registry's installable check alone. `device.id` zero: no device
/// (a server verifying a release), its standing is then Unknown and not asked.
// solhint-disable-next-line gas-struct-packing
struct UpdateCheckQuery {
    IUpdateRegistry registry;
    IFleetRegistry fleet;
    IUpdatePolicies policies;
    bytes32 releaseId;
    Release release;
    address signer;
    bytes signature;
    DeviceRecord device;
    uint64 batchId;
    bytes32[] proof;
    InstalledComponent[] installed;
    bytes32[] running;
    bytes evidence;
}

/// @notice The ledger's facts for one update check, all read at one block.
// solhint-disable-next-line gas-struct-packing
struct UpdateCheckFacts {
    uint256 blockNumber;
    uint256 blockTimestamp;
    bool known;
    ReleaseState state;
    string providerName;
    bool providerBarred;
    bool signerRegistered; // valid for the release (its key's term at its publication); unknown release: may sign now
    bool signerActive; // may sign new releases now (not retired)
    bool signerCompromised; // the release's recorded key, retired as compromised at or before its publication
    uint256 signerCodeSize;
    bool signerVouches;
    ReleaseStatus[] runningStatus;
    InstallCheck verdict;
    address policy;
    uint256 reason;
    DeviceStanding standing;
}

/// @title One read for an update check, without a deployment.
/// @notice Never deployed: an agent sends this contract's creation code with its query as an
/// `eth_call` with no `to`, and the constructor answers with the facts' ABI encoding as if it
/// were the runtime code. So a device asks one question per check instead of ten (issue 17), on
/// any EVM node, with no address to configure and nothing for an administrator to deploy. The
/// agent decides on the facts exactly as it did on the separate calls (agent/chain/ledgerLens.ts).
contract UpdateCheckLens {
    bytes4 private constant _ERC1271_MAGIC = 0x1626ba7e;

    /// @notice Reads the facts of every query and returns them as this "contract's" code (see the
    /// title); with no query, deploys the lens as an ordinary contract (see `answer`).
    /// @dev Several queries in one read: a firmware server asks for the devices arriving together.
    constructor(UpdateCheckQuery[] memory queries) {
        if (queries.length == 0) return; // deployed: the runtime code, for `answer`
        bytes memory facts = abi.encode(_readAll(queries));
        // solhint-disable-next-line no-inline-assembly
        assembly {
            return(add(facts, 32), mload(facts))
        }
    }

    /// @notice The same answer from a deployed lens (optional: agents send the creation code).
    function answer(UpdateCheckQuery[] calldata queries) external view returns (UpdateCheckFacts[] memory) {
        return _readAll(queries);
    }

    function _readAll(UpdateCheckQuery[] memory queries) private view returns (UpdateCheckFacts[] memory facts) {
        facts = new UpdateCheckFacts[](queries.length);
        for (uint256 i = 0; i < queries.length; ++i) {
            facts[i] = _read(queries[i]);
        }
    }

    function _read(UpdateCheckQuery memory q) private view returns (UpdateCheckFacts memory f) {
        f.blockNumber = block.number;
        f.blockTimestamp = block.timestamp;
        try q.registry.releaseState(q.releaseId) returns (ReleaseState memory state) {
            f.known = true;
            f.state = state;
        } catch {} // solhint-disable-line no-empty-blocks
        (f.providerName, f.providerBarred) = q.registry.provider(q.release.provider);
        // The registry's rule (docs/adr/0016-signer-rotation.md): a published release is judged by the
        // term of the key it recorded at publication; one not yet published, by whether the key may sign now.
        f.signerActive = q.registry.isProviderSigner(q.release.provider, q.signer);
        f.signerRegistered = f.signerActive;
        if (f.known) {
            (address signedBy, bool valid) = q.registry.releaseSigner(q.releaseId);
            f.signerRegistered = valid && signedBy == q.signer;
            // The registry checked the key could sign when it published: invalid since means compromised.
            f.signerCompromised = !valid && signedBy == q.signer;
        }
        f.signerCodeSize = q.signer.code.length;
        if (f.signerCodeSize > 0) {
            try IERC1271(q.signer).isValidSignature(q.releaseId, q.signature) returns (bytes4 magic) {
                f.signerVouches = magic == _ERC1271_MAGIC;
            } catch {} // solhint-disable-line no-empty-blocks
        }
        f.runningStatus = new ReleaseStatus[](q.running.length);
        for (uint256 i = 0; i < q.running.length; ++i) {
            f.runningStatus[i] = q.registry.releaseStatus(q.running[i]);
        }
        if (address(q.policies) == address(0)) {
            f.verdict = q.registry.checkInstallable(q.release, q.device.hardwareClass, q.installed);
        } else {
            DeviceContext memory ctx = DeviceContext({
                deviceId: q.device.id,
                hardwareClass: q.device.hardwareClass,
                network: q.device.network,
                region: q.device.region,
                installed: q.installed
            });
            (f.verdict, f.policy, f.reason) = q.policies.checkUpdate(q.release, ctx, q.evidence);
        }
        if (q.device.id != bytes32(0)) f.standing = q.fleet.deviceStanding(q.device, q.batchId, q.proof);
    }
}
