"""The `metarec` command line (typer). Only this layer configures logging handlers."""
