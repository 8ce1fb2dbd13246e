"""Editors' review desk (UI and API) and moderation of public submissions; emits article.reviewed and question.answered."""
