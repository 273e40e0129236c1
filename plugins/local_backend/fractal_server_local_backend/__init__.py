"""The `local` and `local_experimental` runner backends."""
