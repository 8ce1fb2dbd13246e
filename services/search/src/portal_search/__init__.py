"""OpenSearch read model and the public search API."""
