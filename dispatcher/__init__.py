"""What the user drives: configuration, the CLI, the local runner, the sandbox and reports."""

__version__ = "0.1.0"  # the one place; pyproject.toml reads it (tool.setuptools.dynamic)
