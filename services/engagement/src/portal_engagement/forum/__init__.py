"""The forum on Party building: threads on topics and their replies, pre-moderated; readers
report posts to the moderators."""
