"""Named mappings, kept as TOML data files (see mapping.load_preset)."""
