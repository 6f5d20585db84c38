// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title TestMulticall
/// @notice Test-only batch reader with the `tryAggregate(bool,(address,bytes)[])` entry
///         point that the x402 reference EVM facilitator calls at the well-known Multicall3
///         address 0xcA11bde05977b3631167028862bE2a173976CA11 to explain a failed EIP-3009
///         simulation (nonce already used, insufficient balance, name/version mismatch).
///         A fresh anvil has no code there; the fixture installs this with anvil_setCode.
///         Stateless, so it needs no initialisation.
contract TestMulticall {
    struct Call {
        address target;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    function tryAggregate(bool requireSuccess, Call[] calldata calls)
        external
        payable
        returns (Result[] memory results)
    {
        results = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; i++) {
            (bool success, bytes memory ret) = calls[i].target.call(calls[i].callData);
            require(success || !requireSuccess, "TestMulticall: call failed");
            results[i] = Result(success, ret);
        }
    }
}
