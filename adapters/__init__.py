"""Channel adapters: one module per channel, each a thin translator between a platform and the
core's models."""
