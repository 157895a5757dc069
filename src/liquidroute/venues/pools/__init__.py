"""On-chain AMM pools as venues: Uniswap v2 and v3 state over JSON-RPC, exact swap math."""
