"""GitHub ingest: parse webhook payloads and REST responses into records."""
