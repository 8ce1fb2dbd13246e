"""Event envelope, typed payloads and the topic registry: the contract between portal services."""
