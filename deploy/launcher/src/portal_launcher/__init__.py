"""The local stack launcher: real Kafka, OpenSearch, PostgreSQL and S3 on loopback, no Docker."""
