"""Images: references, configs, layers, the content-addressed store, archives and registries."""
