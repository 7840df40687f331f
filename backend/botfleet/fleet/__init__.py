"""The controller side: what the api and the worker do to the fleet (no HTTP here)."""
