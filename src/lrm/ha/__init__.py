"""lrm.ha."""
