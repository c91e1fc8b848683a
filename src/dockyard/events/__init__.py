"""What happened (pushes, deletes, repository changes, scans, builds) and who listens."""
