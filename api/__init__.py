"""FastAPI service and dashboard. Built in a later issue."""
