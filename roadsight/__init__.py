"""roadsight: driving from what a camera sees. This package: the CLI and shared run utilities."""

__version__ = "0.1.0"
