"""HTTP routes of the router service, one module per resource."""
