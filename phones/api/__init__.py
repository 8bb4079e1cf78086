"""The phone side's part of the REST API: what phones were seen doing.

``/api/v1/rollouts/{id}/progress/`` (per wave: planned, offered, downloaded, running,
failed; the failed phones; the gate) and ``/api/v1/devices/{identity}/outcomes/`` (a
phone's observed outcomes). Read-only, with the same role permissions as the rest of
the API; ``deviceupdate/api_urls.py`` serves these routes beside the portal's.

Like the portal's: ``serializers``, ``views`` and ``urls`` (the router).
"""
