"""lrm.job."""
