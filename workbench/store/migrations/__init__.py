"""Schema migrations, one module per version: mNNN_<what>.py with VERSION, DESCRIPTION and apply(con)."""
