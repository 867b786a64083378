"""Clients for the systems a flow calls: the shop backend, ticketing, human handoff."""
