"""Task collection: pip and custom collectors, task-group lifecycle."""
