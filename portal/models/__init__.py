"""Models of the control panel, one module per subdomain."""

from portal.models.topology import Pool, Server, Site

__all__ = ["Pool", "Server", "Site"]
