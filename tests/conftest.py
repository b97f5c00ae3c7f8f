"""Fixtures shared by every test module live in tests/support/, one module per real component."""

pytest_plugins = [
    "support.data",
    "support.influxdb",
    "support.influxdb2",
    "support.kafka",
    "support.stack",
    "support.telegraf",
]
