"""Entry points: the CLI (`cli`, grammar in `flags`), the GitHub Action (`action`, which maps its
inputs onto the same flags), the commands both run (`commands`), and the one place that builds
clients from settings (`wiring`). Nothing below this package prints or parses argv."""
