"""Repairs markup, Vietnamese encodings and images; emits article.normalized."""
