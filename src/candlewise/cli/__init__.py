"""The ``candlewise`` command line: thin wrappers that parse options and call the services."""
