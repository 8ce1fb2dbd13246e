"""Published store, public read API, RSS and sitemaps; emits article.published."""
