"""The API's routers, one module per resource, each mounted under /api/v1 by `dispatcher.web.app`."""
