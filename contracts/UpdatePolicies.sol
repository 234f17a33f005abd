// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IUpdateRegistry} from "./interfaces/IUpdateRegistry.sol";
import {IUpdatePolicies} from "./interfaces/IUpdatePolicies.sol";
import {DeviceContext, IUpdatePolicy} from "./interfaces/IUpdatePolicy.sol";
import {InstallCheck, Release} from "./interfaces/UpdateRegistryTypes.sol";

/// @title Update policies attached to components and releases (X.1368 App. II, APP-II-3).
/// @notice Beside the UpdateRegistry (whose roles and installable check it uses), so that
/// policies can change without touching the registry and each contract stays under EIP-170.
contract UpdatePolicies is IUpdatePolicies {
    bytes32 private constant ADMINISTRATOR_ROLE = keccak256("ADMINISTRATOR_ROLE");

    /// @notice The reason a policy that reverted or ran out of gas answers: the check fails closed.
    uint256 public constant POLICY_FAILED = type(uint256).max;
    /// @notice Gas a policy may use for one check.
    uint256 public constant POLICY_GAS = 500_000;

    IUpdateRegistry private immutable _REGISTRY;
    mapping(bytes32 target => IUpdatePolicy) private _policies;

    constructor(IUpdateRegistry registry) {
        _REGISTRY = registry;
    }

    modifier onlyAdministrator() {
        if (!IAccessControl(address(_REGISTRY)).hasRole(ADMINISTRATOR_ROLE, msg.sender)) revert UpdatePoliciesUnauthorized(msg.sender);
        _;
    }

    /// @notice The registry these policies apply to.
    function updateRegistry() external view returns (address) {
        return address(_REGISTRY);
    }

    /// @inheritdoc IUpdatePolicies
    function attachPolicy(bytes32 target, IUpdatePolicy policy) external onlyAdministrator {
        if (address(policy).code.length == 0) revert UpdatePoliciesNotAContract(address(policy));
        _requireBuiltForThisRegistry(address(policy));
        _policies[target] = policy;
        emit PolicyAttached(target, address(policy), msg.sender);
    }

    /// @inheritdoc IUpdatePolicies
    function detachPolicy(bytes32 target) external onlyAdministrator {
        IUpdatePolicy policy = _policies[target];
        if (address(policy) == address(0)) revert UpdatePoliciesNothingAttached(target);
        delete _policies[target];
        emit PolicyDetached(target, address(policy), msg.sender);
    }

    /// @inheritdoc IUpdatePolicies
    function policyFor(bytes32 releaseId, bytes32 component) public view returns (address) {
        IUpdatePolicy own = _policies[releaseId];
        return address(own) != address(0) ? address(own) : address(_policies[component]);
    }

    /// @inheritdoc IUpdatePolicies
    function checkUpdate(Release calldata release, DeviceContext calldata device, bytes calldata evidence)
        external
        view
        returns (InstallCheck verdict, address policy, uint256 reason)
    {
        verdict = _REGISTRY.checkInstallable(release, device.hardwareClass, device.installed);
        if (verdict != InstallCheck.Installable && verdict != InstallCheck.ReleaseVulnerable) return (verdict, address(0), 0);
        bytes32 id = _REGISTRY.releaseId(release);
        policy = policyFor(id, release.component);
        if (policy == address(0)) return (verdict, address(0), 0);
        // A low-level call rather than try/catch: try/catch does not catch an answer that fails to
        // decode (no return data, a wrong length), which would revert the whole check.
        (bool ok, bytes memory answer) = policy.staticcall{gas: POLICY_GAS}(
            abi.encodeCall(IUpdatePolicy.check, (id, release.component, release.version, device, evidence))
        );
        // A caller that left the policy less than its gas must not read a refusal into it: with
        // under 1/63 of the cap left after the call, the policy may have been starved (EIP-150).
        if (!ok && gasleft() < POLICY_GAS / 63) revert UpdatePoliciesOutOfGas();
        reason = ok && answer.length == 32 ? abi.decode(answer, (uint256)) : POLICY_FAILED;
    }

    /// @dev A policy that answers `registry()` with one word must name this registry; one without
    /// the getter (a composer, a policy written before the kit) is taken as it is.
    function _requireBuiltForThisRegistry(address policy) private view {
        (bool ok, bytes memory answer) = policy.staticcall{gas: POLICY_GAS}(abi.encodeWithSignature("registry()"));
        if (!ok || answer.length != 32) return;
        uint256 builtFor = abi.decode(answer, (uint256)); // not (address): a word that is no address must not revert here
        if (builtFor != uint256(uint160(address(_REGISTRY)))) revert UpdatePoliciesWrongRegistry(policy, address(uint160(builtFor)));
    }
}
