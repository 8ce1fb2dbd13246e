"""Online dialogues: a scheduled session with guests; readers ask before or during it, the
editors pick questions for the guests, the answers are published live (server-sent events) and
kept as the transcript."""
