"""`python -m lanmirror` is the `lanmirror` command."""

from lanmirror.cmd.cli import main

raise SystemExit(main())
