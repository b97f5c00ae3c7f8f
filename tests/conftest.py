"""Fixtures shared by every test module live in tests/support/, one module per real component.

Listed so that each comes before the plugins importing it (support.stack imports
support.telegraf): pytest rewrites a plugin's asserts only if it imports it first.
"""

pytest_plugins = [
    "support.data",
    "support.influxdb",
    "support.influxdb2",
    "support.kafka",
    "support.telegraf",
    "support.stack",
]
