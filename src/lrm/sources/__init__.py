"""lrm.sources."""
