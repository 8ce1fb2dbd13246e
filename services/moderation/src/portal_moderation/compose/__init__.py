"""Agencies writing for their own sub-site in the desk: drafts, images, Word import.

What is written here enters the pipeline through ingest as the agency (channel ``desk``),
like any partner's article; nothing reaches the public site another way.
"""
