"""One module per area of the REST contract; responders call core services."""
