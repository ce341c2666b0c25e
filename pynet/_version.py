"""The package version, in a module of its own so that io (which writes it into model files) need not
import the package top."""

__version__ = "0.1.0"
