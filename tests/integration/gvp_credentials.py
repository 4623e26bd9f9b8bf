"""The basic-auth credentials of the simulated Reporting Server pair (`conftest.gvp_pair`)."""

GVP_USER, GVP_PASSWORD = "lrm", "pässwörd"  # not ASCII: credentials travel as UTF-8
