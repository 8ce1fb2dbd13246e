"""Partner push API (REST), partner Kafka topics and feed pulling; emits article.ingested."""
