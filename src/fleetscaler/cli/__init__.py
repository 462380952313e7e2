"""The `fleetscaler` command line: deploy, invoke the router, tune server_config, see the fleet."""
