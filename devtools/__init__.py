"""Development tools: the gateway as local processes, the `make run` demo, the docs check."""
