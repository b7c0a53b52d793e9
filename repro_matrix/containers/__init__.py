"""Container side: the engine (the only `docker` importer), sandbox, bases, builds, cache."""
