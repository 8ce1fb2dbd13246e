"""Online Q&A: readers ask on a topic (optionally of an agency); moderation routes the question
to an agency, which answers; answered questions are public, with each agency's time to answer."""
