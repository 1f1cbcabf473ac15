"""The API's routers, one module per resource family of contract section 4."""
