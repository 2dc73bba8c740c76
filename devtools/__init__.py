"""Development tools: the whole gateway as local processes, and the `make run` demo."""
