"""The job model: descriptions, their validation and expansion (no I/O)."""
