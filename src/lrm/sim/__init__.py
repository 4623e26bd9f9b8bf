"""lrm.sim."""
