"""Settings, logging set-up and the default `gateway.yaml`."""
