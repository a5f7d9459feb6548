# Shared pytest fixtures live in the server's testing package.
pytest_plugins = ["uus.testing.fixtures"]
