"""RTR Studio application: GUI, capture sources, outputs and the command line."""
