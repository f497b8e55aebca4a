"""The HTTP edge: app factory, middleware, problem responses, dependencies and routes."""
