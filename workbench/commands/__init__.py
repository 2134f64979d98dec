"""CLI commands by area; each module has register(group) adding its commands to the `workbench` group."""
