"""The channel-free heart of the gateway: models, engine, queue and store interfaces, NLU and
dialogue."""
