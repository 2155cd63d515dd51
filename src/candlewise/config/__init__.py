"""The typed, frozen configuration (``app_config``), its YAML loader and the secrets."""
