"""The REST API (`/api/v1/`) and its OpenAPI schema (`/api/schema/`): thin views over the
same services and selectors as the control panel and the management commands."""
