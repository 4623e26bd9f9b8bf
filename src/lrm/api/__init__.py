"""lrm.api."""
