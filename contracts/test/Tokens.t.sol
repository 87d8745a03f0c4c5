// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
import {DisabledVerifier} from "../src/DisabledVerifier.sol";
import {Test} from "./utils/Test.sol";

/// @notice The devnet stablecoin and the fail-closed verifier.
contract TestStablecoinTest is Test {
    TestStablecoin internal usdc;
    TestStablecoin internal dai;
    address internal owner;
    address internal alice;
    uint256 internal aliceKey;
    address internal bob;

    function setUp() public {
        owner = makeAddr("owner");
        (alice, aliceKey) = makeAccount("alice");
        bob = makeAddr("bob");
        usdc = new TestStablecoin("Test USD Coin", "tUSDC", 6, owner);
        dai = new TestStablecoin("Test Dai", "tDAI", 18, owner);
    }

    function test_metadata() public view {
        assertEq(usdc.decimals(), 6, "usdc decimals");
        assertEq(dai.decimals(), 18, "dai decimals");
        assertEq(keccak256(bytes(usdc.name())), keccak256("Test USD Coin"), "name");
        assertEq(keccak256(bytes(usdc.symbol())), keccak256("tUSDC"), "symbol");
        assertEq(usdc.owner(), owner, "owner");
        assertEq(usdc.totalSupply(), 0, "no initial supply");
    }

    function test_mint_byOwner() public {
        vm.prank(owner);
        usdc.mint(alice, 12_500_000);
        assertEq(usdc.balanceOf(alice), 12_500_000, "balance");
        assertEq(usdc.totalSupply(), 12_500_000, "supply");
    }

    function test_mint_revertsForNonOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        vm.prank(alice);
        usdc.mint(alice, 1);
    }

    function testFuzz_mint_onlyOwner(address caller, address to, uint256 amount) public {
        vm.assume(to != address(0) && caller != address(vm));
        if (caller != owner) {
            vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, caller));
        }
        vm.prank(caller);
        usdc.mint(to, amount);
        assertEq(usdc.balanceOf(to), caller == owner ? amount : 0, "balance");
    }

    function test_permit_domainAndSignature() public {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("Test Dai"),
                keccak256("1"),
                block.chainid,
                address(dai)
            )
        );
        assertEq(dai.DOMAIN_SEPARATOR(), domain, "EIP-712 domain: name, version 1, chain, token");

        uint256 deadline = block.timestamp + 1;
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                alice,
                bob,
                7 ether,
                0,
                deadline
            )
        );
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(aliceKey, keccak256(abi.encodePacked("\x19\x01", domain, structHash)));
        dai.permit(alice, bob, 7 ether, deadline, v, r, s);
        assertEq(dai.allowance(alice, bob), 7 ether, "allowance");
        assertEq(dai.nonces(alice), 1, "nonce");
    }
}

contract DisabledVerifierTest is Test {
    DisabledVerifier internal verifier;

    function setUp() public {
        verifier = new DisabledVerifier();
    }

    function test_rejectsZeroProof() public view {
        uint256[8] memory proof;
        uint256[5] memory input;
        assertFalse(verifier.verifyProof(proof, input), "zero proof");
    }

    function testFuzz_rejectsEverything(uint256[8] memory proof, uint256[5] memory input) public view {
        assertFalse(verifier.verifyProof(proof, input), "any proof");
    }
}
