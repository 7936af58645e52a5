"""Binance spot (testnet) connectivity: signed REST, the WebSocket API user-data stream, market
data, and the Engine that routes orders there (`VELOZ_EXECUTION_MODE=binance_testnet_spot`)."""
