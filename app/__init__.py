"""veloz-gateway: the HTTP gateway in front of the VeloZ trading engine."""

__version__ = "0.4.0"
