"""Test and demo tooling: a builder of signed packages and a simulated phone fleet.

Used by the tests, the benchmarks, the demo package (``deviceupdate_devtools.demo`` and
its ``manage.py make_demo_package``: the tooling is a Django app for that command, and
calls the app's services) and ``manage.py simulate_phones``; request-serving code never
imports it (an import-graph test holds that). It is installed with the project so the
demo and the simulator work
from any install.
"""
