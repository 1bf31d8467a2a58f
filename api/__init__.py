"""The HTTP edge: app factory, routers, dependencies, problem+json, and the `symptrack` command."""
