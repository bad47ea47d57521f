"""Application wiring: the factory, settings, extensions, errors and docs assets."""
