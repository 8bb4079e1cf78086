"""Reading and verifying device update packages: cabinet, description and catalog."""
