"""The storage side: object_query runs nodes next to their objects."""
