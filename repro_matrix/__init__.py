"""repro-matrix: settle "fixed in X" claims by running a reproduction across versions."""

__version__ = "0.1.0"
