"""Where tags come from: flags, tag files, GitHub artifacts (PyGithub), the backfill window.
Everything read here is untrusted and validated before it leaves this package."""
