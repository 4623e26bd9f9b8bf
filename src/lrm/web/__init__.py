"""lrm.web."""
