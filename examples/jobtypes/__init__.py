"""Example job types (docs/job-types.md): MissionControl's echo and taco modules, written
the way MissionControl's own are, and a small parameter sweep."""
