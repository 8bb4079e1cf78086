"""The control panel: topology, packages, rules, test devices, settings and audit."""
