"""Sign-in with directory accounts (LDAP / Active Directory) through django-auth-ldap.

- ``connection``: django-auth-ldap's settings and python-ldap's options, from
  ``settings.DIRECTORY`` (``deviceupdate.directory``).
- ``names``, ``search``: the forms a user or phone names an account by (``user@domain``,
  ``DOMAIN\\user``, ``sip:user@domain``, ``user``) and the user search for each.
- ``backend``: the authentication backend (roles from directory groups at each sign-in).
- ``outage``: whether the directory could not be asked during a sign-in, so the entry
  point answers "unreachable" (phones: 503 with Retry-After) instead of "wrong password".
- ``accounts``: whether a name is a local account with its own password (break-glass).
"""
