"""Pull integration: feeds (RSS, Atom, JSON Feed) and sitemaps of partner sites that cannot push.

Fetched items go through the same use case as pushed ones (``intake_usecases.Ingestor.submit``
with ``channel=feed``), so revisions, idempotency, the raw archive and the outbox are shared.
"""
