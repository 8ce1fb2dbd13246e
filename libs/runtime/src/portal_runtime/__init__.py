"""Shared service runtime: settings, telemetry, logs, Kafka, database, S3 and health wiring."""
