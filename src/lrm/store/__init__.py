"""lrm.store."""
