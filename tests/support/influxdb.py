"""InfluxDB 1.x server fixture (filled in by the InfluxDB work)."""
