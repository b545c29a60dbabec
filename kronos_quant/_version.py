"""The package version: a leaf module, so any module can import it without the package root."""

__version__ = "0.1.0"
