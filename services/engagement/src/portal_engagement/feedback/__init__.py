"""Feedback on Party building: documents (or topics) opened for feedback with their sections
and a deadline; readers comment on the whole or on a section; the editors pass it on to the
officials who asked."""
