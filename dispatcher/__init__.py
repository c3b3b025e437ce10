"""What the user drives: configuration, the CLI, the local runner, the sandbox and reports."""
