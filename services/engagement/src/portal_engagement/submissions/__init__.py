"""What every public submission goes through, whatever it is about (a Q&A topic, a dialogue, a
document, a forum topic or thread, an article): the gate (rate limits, contact details, the spam
trap, screening; ``gate``), storing it with its event and its private status link (``intake``),
the receipt, reports on published posts, and the submitter's status link (``api``).

A feature names what its submissions are about with a ``Target`` (``intake``): the kind, the
context it loads (404/409 when there is none or it is closed), its columns and its event.
"""
