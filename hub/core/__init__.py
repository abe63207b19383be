"""The hub's core: the plugin interface and the registries it fills. Imports nothing else of the hub."""
