"""The desk's second feature: public submissions from engagement (Q&A and dialogue questions,
feedback, forum posts, comments; reports on published posts), queued for the editors, routed to
agencies, answered and published. Its rules (``domain``), use cases (``usecases``), tables
(``db``, ``repository``) and JSON API (``api``, ``schemas``); its page in the web desk is
``desk/submissions.py`` and its Kafka subscribers ``submissions_handlers.py``."""
