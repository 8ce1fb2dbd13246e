"""Public Q&A, dialogues, feedback, forum and comments; emits question.submitted."""
