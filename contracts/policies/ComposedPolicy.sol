// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC165} from "@openzeppelin/contracts/utils/introspection/ERC165.sol";
import {IUpdatePolicy} from "../interfaces/IUpdatePolicy.sol";

/// @title A policy made of other policies (X.1368 App. II: "policies compose").
/// @notice The members are fixed at construction. Each member is asked with the same release,
/// device and evidence. A member that reverts, runs out of its gas or answers anything but one
/// word counts as refusing with {MEMBER_FAILED}: a composer never reverts because of a member.
/// @dev Reason encoding, so that a caller can tell which member refused and why: the low 128 bits
/// are the refusing leaf policy's own reason, the high 128 bits the path of member indices that
/// led to it, one byte per composer level, each byte holding index + 1, the outermost composer in
/// the lowest byte. For a composer of leaf policies that is `(index + 1) << 128 | innerReason`;
/// {decodeRefusal} unpacks it. A refusal is never encoded as 0. Leaf policies are expected to
/// answer reasons below 2**128; a larger answer is taken as already carrying a path. Past 16
/// levels of nesting the innermost indices drop out of the path (the refusal stays a refusal).
///
/// Gas: each member gets an equal share of the gas left, less {GAS_RESERVE}, among the members
/// not yet asked; what a member does not use passes on to the next ones. A member that burns its
/// share therefore cannot starve the others (the checker caps a check at a few hundred thousand
/// gas). Return data is read one word at a time, never copied whole.
abstract contract ComposedPolicy is IUpdatePolicy, ERC165 {
    /// @notice The leaf reason of a member that reverted, ran out of gas or answered malformed data.
    uint256 public constant MEMBER_FAILED = type(uint128).max;
    /// @notice How many members a composer may have.
    uint256 public constant MAX_MEMBERS = 8;
    /// @notice Gas kept back from the members for the composer's own work after each call.
    uint256 public constant GAS_RESERVE = 20_000;

    uint256 private constant LEAF_MASK = type(uint128).max;

    /// @notice A composer needs at least one member.
    error ComposedPolicyNoMembers();
    /// @notice More than {MAX_MEMBERS} members.
    error ComposedPolicyTooManyMembers(uint256 count, uint256 max);
    /// @notice A member address with no code.
    error ComposedPolicyNotAContract(address member);

    /// @notice The composer was created with these members, in the order they are asked.
    event PolicyComposed(IUpdatePolicy[] members);

    IUpdatePolicy[] private _members;

    /// @notice Fixes the members.
    /// @param members_ The member policies, in the order they are asked.
    constructor(IUpdatePolicy[] memory members_) {
        if (members_.length == 0) revert ComposedPolicyNoMembers();
        if (members_.length > MAX_MEMBERS) revert ComposedPolicyTooManyMembers(members_.length, MAX_MEMBERS);
        for (uint256 i = 0; i < members_.length; ++i) {
            if (address(members_[i]).code.length == 0) revert ComposedPolicyNotAContract(address(members_[i]));
            _members.push(members_[i]);
        }
        emit PolicyComposed(members_);
    }

    /// @notice The member policies, in the order they are asked.
    function members() external view returns (IUpdatePolicy[] memory) {
        return _members;
    }

    /// @notice The reason this composer answers when its member `index` refused with `reason`.
    function encodeRefusal(uint256 index, uint256 reason) public pure returns (uint256) {
        uint256 path = ((reason >> 128) << 8) | (index + 1);
        return (path << 128) | (reason & LEAF_MASK);
    }

    /// @notice Unpacks a composer's refusal: `path[0]` is the index of this composer's refusing
    /// member, `path[1]` the index within that member (if it is a composer), and so on;
    /// `leafReason` is the reason of the leaf policy that refused ({MEMBER_FAILED} if it failed).
    function decodeRefusal(uint256 reason) external pure returns (uint256[] memory path, uint256 leafReason) {
        uint256 packed = reason >> 128;
        uint256 depth = 0;
        while (depth < 16 && (packed >> (8 * depth)) & 0xff != 0) ++depth;
        path = new uint256[](depth);
        for (uint256 i = 0; i < depth; ++i) {
            path[i] = ((packed >> (8 * i)) & 0xff) - 1;
        }
        leafReason = reason & LEAF_MASK;
    }

    /// @dev The number of members.
    function _memberCount() internal view returns (uint256) {
        return _members.length;
    }

    /// @dev Asks member `index` with the encoded `data`, giving it an equal share of the gas left
    /// among the `left` members not yet asked (this one included). Never reverts.
    function _ask(uint256 index, bytes memory data, uint256 left) internal view returns (uint256 reason) {
        address member = address(_members[index]);
        uint256 available = gasleft();
        if (available <= GAS_RESERVE) return MEMBER_FAILED;
        uint256 share = (available - GAS_RESERVE) / left;
        bool ok;
        uint256 size;
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            ok := staticcall(share, member, add(data, 0x20), mload(data), 0x00, 0x20)
            size := returndatasize()
            reason := mload(0x00)
        }
        if (!ok || size < 32) return MEMBER_FAILED;
    }

    /// @inheritdoc ERC165
    /// @dev A composer is an update policy; it names no reasons of its own (a refusal carries its
    /// member's path and the member's reason: {decodeRefusal}, then ask that member).
    function supportsInterface(bytes4 interfaceId) public view virtual override returns (bool) {
        return interfaceId == type(IUpdatePolicy).interfaceId || super.supportsInterface(interfaceId);
    }
}
