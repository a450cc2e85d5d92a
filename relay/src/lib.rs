//! The relay: the one bind point between clients asking for historical market data, the ingestors that
//! fetch it, and the live market-data source. See `docs/relay-protocol.md` for the wire contract.
