"""Agencies compose their own articles in the desk: writing, Word import and images."""
