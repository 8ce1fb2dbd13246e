"""Comments on published articles: pre-moderated, listed once approved; readers report them."""
