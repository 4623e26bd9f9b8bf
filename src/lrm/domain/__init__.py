"""The pure core of lrm: counting, calendars, bundles, scheduling and lease maths.

Nothing here does I/O; time and data are arguments. An import contract in pyproject.toml
keeps it that way."""
