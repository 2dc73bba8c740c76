"""One module per URL prefix: the handlers of the tenant and operator API."""
