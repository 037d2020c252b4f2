"""kerastl."""
