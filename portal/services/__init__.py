"""Services: every write of the control panel, one module per subdomain."""
