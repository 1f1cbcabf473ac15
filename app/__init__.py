"""The composition layer: the command line, the demo and service start-up."""
