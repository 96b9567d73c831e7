"""The runners of protect jobs: jobs (create, open, skip rules, report), the local runner and
the Ray runner (optional, the `scale` extra)."""
