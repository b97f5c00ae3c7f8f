"""Where lines go: stdout or a file (`sinks.file`); InfluxDB directly (`sinks.influxdb`, lazy import)."""

from .file import LineSink, open_output

__all__ = ["LineSink", "open_output"]
