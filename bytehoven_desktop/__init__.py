"""Bytehoven Desktop: reads piano sheet music and says, row by row, whose style it is."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bytehoven-desktop")
except PackageNotFoundError:  # running from a source tree or a frozen bundle
    __version__ = "0.1.0"
