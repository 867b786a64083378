"""The gateway process: aiohttp app, routes, CLI, start-up and shutdown wiring."""
