"""lrm: License Reporting Manager."""

__version__ = "0.1.0"
