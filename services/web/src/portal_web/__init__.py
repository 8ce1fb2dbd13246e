"""The public portal website (server-rendered Vietnamese HTML over the public APIs)."""
