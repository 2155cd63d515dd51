"""The composition root: the one place that builds config, secrets, store, registry, feed and
broker, and the guide's ``UnifiedDataProvider`` on top of it."""
